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
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,ssse3")))

static float f16_lut[65536];
/* How far ahead of the rows it reads a tile kernel prefetches: 8 KB (about
 * 14 rows of a 1024-wide Q4_0 matrix). One token's matmul is a stream through
 * the weights at memory speed; the hardware prefetcher alone, or a prefetch
 * of the next 4 rows (2-4 KB), kept too few lines in flight: one-token
 * generation at 8 KB was 5-30% faster than at 4 rows (Q4_0, Q8_0, Q4_K_M, one
 * and two threads, interleaved runs on this 2-vCPU Xeon); 16-32 KB were no
 * better and sometimes worse. */
#define PF_AHEAD 8192

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
#define DOT4_BODY(WBYTES)                                                                          \
    const blk_q8_0 *ys[4];                                                                         \
    for (int r = 0; r < 4; r++)                                                                    \
        ys[r] = (const blk_q8_0 *)((const uint8_t *)av + (size_t)(r < nr ? r : 0) * stride);       \
    size_t nb = n / QK, i = 0;                                                                     \
    __m256 acc[4][2];                                                                              \
    for (int r = 0; r < 4; r++)                                                                    \
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();                                               \
    for (; i < nb; i++) {                                                                          \
        __m256i w = WBYTES;                                                                        \
        __m256i aw = _mm256_abs_epi8(w);                                                           \
        float dw = f16_lut[x[i].d];                                                                \
        for (int r = 0; r < 4; r++) {                                                              \
            __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw,                            \
                                            _mm256_sign_epi8(LDY(ys[r][i].qs), w));                \
            acc[r][i & 1] = _mm256_fmadd_ps(_mm256_set1_ps(dw * f16_lut[ys[r][i].d]),              \
                                            _mm256_cvtepi32_ps(p), acc[r][i & 1]);                 \
        }                                                                                          \
    }                                                                                              \
    for (int r = 0; r < nr; r++)                                                                   \
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

/* ---- tiles: 4 weight rows x up to 4 activation rows, two blocks per zmm ----
 *
 * Prepared activation layout, 192 bytes per pair of blocks (i, i+1):
 *   [0, 64)    the 64 int8 quants in the order the kernel unpacks weights
 *   [64, 128)  16 floats: each int32 lane's activation scale
 *   [128, 192) 16 int32: a constant added to each lane (Q4_0: -8 * sum of the
 *              lane's 4 quants, which turns the unsigned nibbles into q - 8)
 * Q4_0 weights: the 16 packed bytes of both blocks make one ymm; its low and
 * high nibbles make the zmm [i 0..15 | i+1 0..15 | i 16..31 | i+1 16..31],
 * used unsigned by vpdpbusd. Q8_0 weights are signed, so the activations are
 * stored offset by +128 (unsigned) and each weight pair's 128 * sum is
 * subtracted: one vpdpbusd per (row, column) either way. */

TGT static void tile_prep_q4_0(const void *aq, void *dst, size_t n)
{
    const blk_q8_0 *y = aq;
    uint8_t *o = dst;
    for (size_t i = 0; i < n / QK; i += 2, o += 192) {
        __m256i a0 = LDY(y[i].qs), a1 = LDY(y[i + 1].qs);
        __m512i q =
            _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_permute2x128_si256(a0, a1, 0x20)),
                               _mm256_permute2x128_si256(a0, a1, 0x31), 1);
        _mm512_storeu_si512(o, q);
        __m512 d = _mm512_mask_blend_ps(0xF0F0, _mm512_set1_ps(f16_lut[y[i].d]),
                                        _mm512_set1_ps(f16_lut[y[i + 1].d]));
        _mm512_storeu_ps(o + 64, d);
        __m512i bias = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), q);
        _mm512_storeu_si512(o + 128, _mm512_sub_epi32(_mm512_setzero_si512(), bias));
    }
}

TGT static void tile_prep_q8_0(const void *aq, void *dst, size_t n)
{
    const blk_q8_0 *y = aq;
    uint8_t *o = dst;
    for (size_t i = 0; i < n / QK; i += 2, o += 192) {
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(LDY(y[i].qs)), LDY(y[i + 1].qs), 1);
        _mm512_storeu_si512(o, _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)));
        __m512 d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(f16_lut[y[i].d]),
                                        _mm512_set1_ps(f16_lut[y[i + 1].d]));
        _mm512_storeu_ps(o + 64, d);
        _mm512_storeu_si512(o + 128, _mm512_setzero_si512());
    }
}

#define TILE_UNROLL _Pragma("GCC unroll 4")

/* The body for NC columns; Q4 selects the weight format. Inlined with
 * constant NC and Q4 so that the accumulators live in registers. */
TGT static inline __attribute__((always_inline)) void tile_body(size_t n, const uint8_t *w,
                                                                size_t ws, const uint8_t *a,
                                                                size_t as, float *y, size_t ys,
                                                                const int NC, const int Q4)
{
    __m512 acc[4][4];
    TILE_UNROLL
    for (int r = 0; r < 4; r++) {
        TILE_UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm512_setzero_ps();
    }
    const size_t bs = Q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    const __mmask16 hi = Q4 ? 0xF0F0 : 0xFF00;
    for (size_t p = 0; p < n / 64; p++) {
        __m512i wq[4], nb[4];
        __m512 dw[4];
        TILE_UNROLL
        for (int r = 0; r < 4; r++) {
            const uint8_t *b0 = w + (size_t)r * ws + 2 * p * bs, *b1 = b0 + bs;
            /* the rows this thread most likely reads next (PF_AHEAD) */
            _mm_prefetch((const char *)b0 + PF_AHEAD, _MM_HINT_T0);
            uint16_t h0, h1;
            memcpy(&h0, b0, 2);
            memcpy(&h1, b1, 2);
            dw[r] =
                _mm512_mask_blend_ps(hi, _mm512_set1_ps(f16_lut[h0]), _mm512_set1_ps(f16_lut[h1]));
            if (Q4) {
                __m256i v = _mm256_inserti128_si256(
                    _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + 2))),
                    _mm_loadu_si128((const __m128i *)(b1 + 2)), 1);
                __m512i z =
                    _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
                wq[r] = _mm512_and_si512(z, _mm512_set1_epi8(0xF));
                nb[r] = _mm512_setzero_si512();
            } else {
                wq[r] = _mm512_inserti64x4(_mm512_castsi256_si512(LDY(b0 + 2)), LDY(b1 + 2), 1);
                nb[r] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                         _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                             _mm512_set1_epi8((char)0x80), wq[r]));
            }
        }
        TILE_UNROLL
        for (int c = 0; c < NC; c++) {
            const uint8_t *ap = a + (size_t)c * as + p * 192;
            __m512i av = _mm512_loadu_si512(ap);
            __m512 da = _mm512_loadu_ps((const float *)(ap + 64));
            __m512i ab = _mm512_loadu_si512(ap + 128);
            TILE_UNROLL
            for (int r = 0; r < 4; r++) {
                __m512i pr =
                    Q4 ? _mm512_dpbusd_epi32(ab, wq[r], av) : _mm512_dpbusd_epi32(nb[r], av, wq[r]);
                acc[r][c] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_mul_ps(dw[r], da), acc[r][c]);
            }
        }
    }
    TILE_UNROLL
    for (int c = 0; c < NC; c++) {
        TILE_UNROLL
        for (int r = 0; r < 4; r++)
            y[(size_t)c * ys + r] = _mm512_reduce_add_ps(acc[r][c]);
    }
}

#define TILE_FN(NAME, Q4)                                                                          \
    TGT static void NAME(size_t n, const void *w, size_t ws, const void *a, size_t as, int nc,     \
                         float *y, size_t ys)                                                      \
    {                                                                                              \
        switch (nc) {                                                                              \
        case 1:                                                                                    \
            tile_body(n, w, ws, a, as, y, ys, 1, Q4);                                              \
            break;                                                                                 \
        case 2:                                                                                    \
            tile_body(n, w, ws, a, as, y, ys, 2, Q4);                                              \
            break;                                                                                 \
        case 3:                                                                                    \
            tile_body(n, w, ws, a, as, y, ys, 3, Q4);                                              \
            break;                                                                                 \
        default:                                                                                   \
            tile_body(n, w, ws, a, as, y, ys, 4, Q4);                                              \
            break;                                                                                 \
        }                                                                                          \
    }
TILE_FN(tile4_q4_0, 1)
TILE_FN(tile4_q8_0, 0)

/* F32 . F32, 4 weight rows x NC (1..4) activation rows, rows of any length:
 * one accumulator per (row, column), so each weight and activation chunk is
 * loaded once for 4 products, and the 4 rows of a column are reduced
 * together (a transpose-add) into one vector of 4 sums. For small models
 * (the bundled one: rows of 64) the per-dot reductions of dot_f32 were most
 * of the work. The sums associate differently from dot_f32 (one chain per
 * lane, then the tree), a float rounding difference only. */
TGT static inline __m128 hsum4x16(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c, d */
    __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

TGT static inline __attribute__((always_inline)) void tile_f32_body(size_t n, const uint8_t *w,
                                                                    size_t ws, const uint8_t *a,
                                                                    size_t as, float *y, size_t ys,
                                                                    const int NC)
{
    __m512 acc[4][4];
    TILE_UNROLL
    for (int r = 0; r < 4; r++) {
        TILE_UNROLL
        for (int c = 0; c < NC; c++)
            acc[r][c] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < n; i += 16) {
        /* a masked last chunk: any row length works (ffn_down of small models has 172) */
        __mmask16 mk = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 wv[4];
        TILE_UNROLL
        for (int r = 0; r < 4; r++)
            wv[r] = _mm512_maskz_loadu_ps(mk, (const float *)(w + (size_t)r * ws) + i);
        TILE_UNROLL
        for (int c = 0; c < NC; c++) {
            __m512 av = _mm512_maskz_loadu_ps(mk, (const float *)(a + (size_t)c * as) + i);
            TILE_UNROLL
            for (int r = 0; r < 4; r++)
                acc[r][c] = _mm512_fmadd_ps(wv[r], av, acc[r][c]);
        }
    }
    TILE_UNROLL
    for (int c = 0; c < NC; c++)
        _mm_storeu_ps(y + (size_t)c * ys, hsum4x16(acc[0][c], acc[1][c], acc[2][c], acc[3][c]));
}

TGT static void tile4_f32(size_t n, const void *w, size_t ws, const void *a, size_t as, int nc,
                          float *y, size_t ys)
{
    switch (nc) {
    case 1:
        tile_f32_body(n, w, ws, a, as, y, ys, 1);
        break;
    case 2:
        tile_f32_body(n, w, ws, a, as, y, ys, 2);
        break;
    case 3:
        tile_f32_body(n, w, ws, a, as, y, ys, 3);
        break;
    default:
        tile_f32_body(n, w, ws, a, as, y, ys, 4);
        break;
    }
}

/* Q4_K . Q8_K, 4 weight rows x NC (1..2) activation rows, no preparation:
 * each 32-byte chunk of nibbles makes a zmm of 64 elements in their natural
 * order (low nibbles then high), which the Q8_K quants already have. The
 * 6-bit scales multiply the 16-bit pair sums of vpmaddubsw inside vpdpwssd;
 * the mins term uses the Q8_K sums of 16. */
TGT static inline void q4_K_scales(const uint8_t *q, uint8_t out[16])
{
    uint32_t u[4];
    memcpy(u, q, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    uint32_t aux = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = aux;
    u[0] &= k1;
    memcpy(out, u, 16); /* scales 0..7, then mins 0..7 */
}

/* 4 int32 vectors -> their 4 sums (a, b, c, d) in one __m128i. */
TGT static inline __m128i hsum4_epi32(__m512i a, __m512i b, __m512i c, __m512i d)
{
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

TGT static inline __m128i hsum4_epi32_256(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    __m256i s = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

/* Each block's exact integer sums (scaled quants, and mins times the
 * sub-block sums) are reduced per (row, column) and go into one float chain
 * per pair, acc = fma(I, d*da, acc), acc = fnmadd(M, dmin*da, acc): the
 * arithmetic of the panel kernel (gemm_q4_K), so batched prompts and single
 * tokens give the same bits. */
TGT static inline __attribute__((always_inline)) void tile_q4_K_body(size_t n, const uint8_t *w,
                                                                     size_t ws, const uint8_t *a,
                                                                     size_t as, float *y, size_t ys,
                                                                     const int NC)
{
    __m128 acc[2];
    TILE_UNROLL
    for (int c = 0; c < NC; c++)
        acc[c] = _mm_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (size_t b = 0; b < n / QK_K; b++) {
        __m512i sc16[4];
        __m256i mn16[4];
        float dws[4], dms[4];
        __m512i isum[4][2];
        TILE_UNROLL
        for (int r = 0; r < 4; r++) {
            const blk_q4_K *x = (const blk_q4_K *)(w + (size_t)r * ws) + b;
            _mm_prefetch((const char *)x + PF_AHEAD, _MM_HINT_T0);
            _mm_prefetch((const char *)x + PF_AHEAD + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)x + PF_AHEAD + 128, _MM_HINT_T0);
            uint8_t sm[16];
            q4_K_scales(x->scales, sm);
            __m128i v = _mm_loadu_si128((const __m128i *)sm);
            sc16[r] = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(v));
            mn16[r] = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_srli_si128(v, 8), dup));
            dws[r] = f16_lut[x->d];
            dms[r] = f16_lut[x->dmin];
            TILE_UNROLL
            for (int c = 0; c < NC; c++)
                isum[r][c] = _mm512_setzero_si512();
        }
        TILE_UNROLL
        for (int ch = 0; ch < 4; ch++) {
            /* words 0..15 take scale 2ch, words 16..31 scale 2ch+1 */
            const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * ch)),
                                                   _mm256_set1_epi16((short)(2 * ch + 1)), 1);
            __m512i av[2];
            TILE_UNROLL
            for (int c = 0; c < NC; c++)
                av[c] =
                    _mm512_loadu_si512(((const blk_q8_K *)(a + (size_t)c * as) + b)->qs + 64 * ch);
            TILE_UNROLL
            for (int r = 0; r < 4; r++) {
                const blk_q4_K *x = (const blk_q4_K *)(w + (size_t)r * ws) + b;
                __m256i q = LDY(x->qs + 32 * ch);
                __m512i z = _mm512_and_si512(
                    _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
                __m512i s = _mm512_permutexvar_epi16(idx, sc16[r]);
                TILE_UNROLL
                for (int c = 0; c < NC; c++)
                    isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], _mm512_maddubs_epi16(z, av[c]), s);
            }
        }
        const __m128 dw4 = _mm_loadu_ps(dws), dm4 = _mm_loadu_ps(dms);
        TILE_UNROLL
        for (int c = 0; c < NC; c++) {
            const blk_q8_K *yb = (const blk_q8_K *)(a + (size_t)c * as) + b;
            __m128 da = _mm_set1_ps(yb->d);
            __m256i bs = LDY(yb->bsums);
            __m128i I = hsum4_epi32(isum[0][c], isum[1][c], isum[2][c], isum[3][c]);
            __m128i M =
                hsum4_epi32_256(_mm256_madd_epi16(bs, mn16[0]), _mm256_madd_epi16(bs, mn16[1]),
                                _mm256_madd_epi16(bs, mn16[2]), _mm256_madd_epi16(bs, mn16[3]));
            acc[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(I), _mm_mul_ps(da, dw4), acc[c]);
            acc[c] = _mm_fnmadd_ps(_mm_cvtepi32_ps(M), _mm_mul_ps(da, dm4), acc[c]);
        }
    }
    TILE_UNROLL
    for (int c = 0; c < NC; c++)
        _mm_storeu_ps(y + (size_t)c * ys, acc[c]);
}

TGT static void tile4_q4_K(size_t n, const void *w, size_t ws, const void *a, size_t as, int nc,
                           float *y, size_t ys)
{
    const uint8_t *ab = a;
    for (int c = 0; c < nc; c += 2) {
        if (nc - c >= 2)
            tile_q4_K_body(n, w, ws, ab + (size_t)c * as, as, y + (size_t)c * ys, ys, 2);
        else
            tile_q4_K_body(n, w, ws, ab + (size_t)c * as, as, y + (size_t)c * ys, ys, 1);
    }
}

/* Q6_K . Q8_K, the same shape: each half of a block gives two zmm of 64
 * elements in natural order ([low nibbles of ql | of ql+32] with qh bits
 * 0-1 and 2-3, then the high nibbles with bits 4-5 and 6-7). q - 32 comes
 * from subtracting vpmaddubsw(32, a), computed once per activation row.
 * Like the Q4_K tile, each block's exact integer sum (sum_j sc_j sum (q-32)a)
 * is reduced per (row, column) and goes into one float chain per pair,
 * acc = fma(I, d*da, acc): the arithmetic of the panel kernel (gemm_q6_K),
 * so batched prompts and single tokens give the same bits. */
TGT static inline __attribute__((always_inline)) void tile_q6_K_body(size_t n, const uint8_t *w,
                                                                     size_t ws, const uint8_t *a,
                                                                     size_t as, float *y, size_t ys,
                                                                     const int NC)
{
    __m128 acc[2];
    TILE_UNROLL
    for (int c = 0; c < NC; c++)
        acc[c] = _mm_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3), c32 = _mm512_set1_epi8(32);
    const __m512i sh02 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (size_t b = 0; b < n / QK_K; b++) {
        __m512i sc16[4];
        float dws[4];
        __m512i isum[4][2];
        TILE_UNROLL
        for (int r = 0; r < 4; r++) {
            const blk_q6_K *x = (const blk_q6_K *)(w + (size_t)r * ws) + b;
            _mm_prefetch((const char *)x + PF_AHEAD, _MM_HINT_T0);
            _mm_prefetch((const char *)x + PF_AHEAD + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)x + PF_AHEAD + 128, _MM_HINT_T0);
            _mm_prefetch((const char *)x + PF_AHEAD + 192, _MM_HINT_T0);
            sc16[r] = _mm512_castsi256_si512(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
            dws[r] = f16_lut[x->d];
            TILE_UNROLL
            for (int c = 0; c < NC; c++)
                isum[r][c] = _mm512_setzero_si512();
        }
        TILE_UNROLL
        for (int h = 0; h < 2; h++) {
            __m512i av[2][2], corr[2][2];
            TILE_UNROLL
            for (int c = 0; c < NC; c++) {
                const int8_t *q = ((const blk_q8_K *)(a + (size_t)c * as) + b)->qs + 128 * h;
                av[c][0] = _mm512_loadu_si512(q);
                av[c][1] = _mm512_loadu_si512(q + 64);
                corr[c][0] = _mm512_maddubs_epi16(c32, av[c][0]);
                corr[c][1] = _mm512_maddubs_epi16(c32, av[c][1]);
            }
            TILE_UNROLL
            for (int r = 0; r < 4; r++) {
                const blk_q6_K *x = (const blk_q6_K *)(w + (size_t)r * ws) + b;
                __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
                /* [qh | qh >> 2]: a broadcast load and a shift, no shuffle */
                __m512i H = _mm512_srlv_epi16(_mm512_broadcast_i64x4(LDY(x->qh + 32 * h)), sh02);
                __m512i z[2];
                z[0] = _mm512_or_si512(_mm512_and_si512(L, m4),
                                       _mm512_slli_epi16(_mm512_and_si512(H, m3), 4));
                z[1] = _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 4), m3), 4));
                TILE_UNROLL
                for (int kk = 0; kk < 2; kk++) {
                    const int ch = 2 * h + kk;
                    const __m512i idx = _mm512_set_epi16(
                        4 * ch + 3, 4 * ch + 3, 4 * ch + 3, 4 * ch + 3, 4 * ch + 3, 4 * ch + 3,
                        4 * ch + 3, 4 * ch + 3, 4 * ch + 2, 4 * ch + 2, 4 * ch + 2, 4 * ch + 2,
                        4 * ch + 2, 4 * ch + 2, 4 * ch + 2, 4 * ch + 2, 4 * ch + 1, 4 * ch + 1,
                        4 * ch + 1, 4 * ch + 1, 4 * ch + 1, 4 * ch + 1, 4 * ch + 1, 4 * ch + 1,
                        4 * ch, 4 * ch, 4 * ch, 4 * ch, 4 * ch, 4 * ch, 4 * ch, 4 * ch);
                    __m512i s = _mm512_permutexvar_epi16(idx, sc16[r]);
                    TILE_UNROLL
                    for (int c = 0; c < NC; c++) {
                        __m512i p =
                            _mm512_sub_epi16(_mm512_maddubs_epi16(z[kk], av[c][kk]), corr[c][kk]);
                        isum[r][c] = _mm512_dpwssd_epi32(isum[r][c], p, s);
                    }
                }
            }
        }
        const __m128 dw4 = _mm_loadu_ps(dws);
        TILE_UNROLL
        for (int c = 0; c < NC; c++) {
            __m128 da = _mm_set1_ps(((const blk_q8_K *)(a + (size_t)c * as) + b)->d);
            __m128i I = hsum4_epi32(isum[0][c], isum[1][c], isum[2][c], isum[3][c]);
            acc[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(I), _mm_mul_ps(da, dw4), acc[c]);
        }
    }
    TILE_UNROLL
    for (int c = 0; c < NC; c++)
        _mm_storeu_ps(y + (size_t)c * ys, acc[c]);
}

TGT static void tile4_q6_K(size_t n, const void *w, size_t ws, const void *a, size_t as, int nc,
                           float *y, size_t ys)
{
    const uint8_t *ab = a;
    for (int c = 0; c < nc; c += 2) {
        if (nc - c >= 2)
            tile_q6_K_body(n, w, ws, ab + (size_t)c * as, as, y + (size_t)c * ys, ys, 2);
        else
            tile_q6_K_body(n, w, ws, ab + (size_t)c * as, as, y + (size_t)c * ys, ys, 1);
    }
}

TGT static void axpy_f16(size_t n, float s, const uint16_t *v, float *out)
{
    __m512 sv = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(
            out + i,
            _mm512_fmadd_ps(sv, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i))),
                            _mm512_loadu_ps(out + i)));
    for (; i < n; i++)
        out[i] += s * f16_lut[v[i]];
}

/* dot_f32 over 4 activation rows at once (prompt processing of F32 models):
 * each row keeps dot_f32's own four accumulators and tail, so every sum is
 * bit for bit what dot_f32 gives, but each weight chunk is loaded once for
 * the four rows and there is one call instead of four. */
TGT static void dot4_f32(size_t n, const void *wv, const void *av, size_t stride, int nr,
                         float *out)
{
    const float *w = wv;
    if (nr != 4) {
        for (int r = 0; r < nr; r++)
            out[r] = dot_f32(n, wv, (const uint8_t *)av + (size_t)r * stride);
        return;
    }
    const float *a0 = av, *a1 = (const float *)((const uint8_t *)av + stride);
    const float *a2 = (const float *)((const uint8_t *)av + 2 * stride);
    const float *a3 = (const float *)((const uint8_t *)av + 3 * stride);
    /* written out row by row: GCC -O2 keeps an accumulator array in memory */
    const __m512 z = _mm512_setzero_ps();
    __m512 s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z;
    __m512 s20 = z, s21 = z, s22 = z, s23 = z, s30 = z, s31 = z, s32 = z, s33 = z;
#define LD _mm512_loadu_ps
#define FMA4(r, a)                                                                                 \
    s##r##0 = _mm512_fmadd_ps(w0, LD(a + i), s##r##0);                                             \
    s##r##1 = _mm512_fmadd_ps(w1, LD(a + i + 16), s##r##1);                                        \
    s##r##2 = _mm512_fmadd_ps(w2, LD(a + i + 32), s##r##2);                                        \
    s##r##3 = _mm512_fmadd_ps(w3, LD(a + i + 48), s##r##3);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 w0 = LD(w + i), w1 = LD(w + i + 16), w2 = LD(w + i + 32), w3 = LD(w + i + 48);
        FMA4(0, a0)
        FMA4(1, a1)
        FMA4(2, a2)
        FMA4(3, a3)
    }
#undef FMA4
    for (; i + 16 <= n; i += 16) {
        __m512 w0 = LD(w + i);
        s00 = _mm512_fmadd_ps(w0, LD(a0 + i), s00);
        s10 = _mm512_fmadd_ps(w0, LD(a1 + i), s10);
        s20 = _mm512_fmadd_ps(w0, LD(a2 + i), s20);
        s30 = _mm512_fmadd_ps(w0, LD(a3 + i), s30);
    }
#undef LD
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 w0 = _mm512_maskz_loadu_ps(m, w + i);
        s01 = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, a0 + i), s01);
        s11 = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, a1 + i), s11);
        s21 = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, a2 + i), s21);
        s31 = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, a3 + i), s31);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s00, s01), _mm512_add_ps(s02, s03)));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s10, s11), _mm512_add_ps(s12, s13)));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s20, s21), _mm512_add_ps(s22, s23)));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s30, s31), _mm512_add_ps(s32, s33)));
}

/* ---- attention for small heads (quant_att_fn) ----
 * Toy models (the bundled stories260K has 8-wide heads) spend most of a
 * prompt in attention, where a dot_f16 and an axpy_f16 call per position
 * cost more than their 8 to 32 products. This keeps q, the scores' partial
 * sums and the output row in registers, doing the same arithmetic lane for
 * lane: dot_f16 leaves a head's products in its two accumulators as the
 * 8-lane chunks [c0|c1] and [c2|c3], which its reduction adds as
 * (c1 + c3) + (c0 + c2) before the 8-lane tree of hsum8 (the order of
 * _mm512_reduce_add_ps); axpy_f16 fuses multiply and add over whole 16-lane
 * blocks and rounds twice in its scalar tail. Absent chunks are zeros, which
 * add exactly, so the result has the same bits as the per-position loop when
 * gcc builds it (clang may contract that scalar tail into an FMA). */
/* Softmax of the @n_pos scores in place, as the per-position loop does it:
 * the maximum (exact in any order, so 16 lanes wide; a NaN score is skipped
 * either way), expf of each score less it, and their sum in double, in
 * order, as its own loop (fused with the calls to expf, the sum was spilled
 * around every one). Returns 1 / sum as a float, the scale of each weight. */
TGT static inline float softmax_scores(float *sc, int n_pos)
{
    __m512 m16 = _mm512_set1_ps(-INFINITY);
    int p0 = 0;
    for (; p0 + 16 <= n_pos; p0 += 16)
        m16 = _mm512_max_ps(_mm512_loadu_ps(sc + p0), m16);
    if (p0 < n_pos) {
        __mmask16 mk = (__mmask16)((1u << (n_pos - p0)) - 1);
        m16 = _mm512_mask_max_ps(m16, mk, _mm512_maskz_loadu_ps(mk, sc + p0), m16);
    }
    float mx = _mm512_reduce_max_ps(m16);
    for (int p = 0; p < n_pos; p++)
        sc[p] = expf(sc[p] - mx);
    double sum = 0;
    for (int p = 0; p < n_pos; p++)
        sum += sc[p];
    return (float)(1.0 / sum);
}

/* 8 f16 values as 8 floats */
#define LDH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))

TGT static inline __attribute__((always_inline)) void
att_small_body(int nc, const uint16_t *q16, const uint16_t *k, const uint16_t *v, size_t stride,
               int n_pos, float scale, float *sc, float *out)
{
    const __m256 z = _mm256_setzero_ps();
    __m256 q[4], o[4];
    for (int c = 0; c < 4; c++) {
        q[c] = c < nc ? LDH(q16 + 8 * c) : z;
        o[c] = z;
    }
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *kr = k + (size_t)p * stride;
        __m256 x[4];
        for (int c = 0; c < 4; c++)
            x[c] = c < nc ? _mm256_mul_ps(LDH(kr + 8 * c), q[c]) : z;
        sc[p] = hsum8(_mm256_add_ps(_mm256_add_ps(x[1], x[3]), _mm256_add_ps(x[0], x[2]))) * scale;
    }
    float inv = softmax_scores(sc, n_pos);
    int fused = nc & ~1; /* chunks inside whole 16-lane blocks of axpy_f16 */
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *vr = v + (size_t)p * stride;
        __m256 s = _mm256_set1_ps(sc[p] * inv);
        for (int c = 0; c < nc; c++) {
            __m256 x = LDH(vr + 8 * c);
            o[c] =
                c < fused ? _mm256_fmadd_ps(s, x, o[c]) : _mm256_add_ps(o[c], _mm256_mul_ps(s, x));
        }
    }
    for (int c = 0; c < nc; c++)
        _mm256_storeu_ps(out + 8 * c, o[c]);
}
#undef LDH

TGT static void att_small(size_t hd, const uint16_t *q16, const uint16_t *k, const uint16_t *v,
                          size_t stride, int n_pos, float scale, float *sc, float *out)
{
    /* one body per head size, so that the chunk loops unroll into registers */
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

/* ---- attention for 64- and 128-wide heads (quant_att_fn) ----
 * The heads of real models (Llama 3.2 1B, Qwen2.5, SmolLM2: 64; 8B models:
 * 128). One token's attention costs a dot_f16 and an axpy_f16 call per
 * position and head; at a few hundred positions those calls took a
 * quarter of a 220M model's generation time. This keeps q and the output
 * row in registers and does the loop's own arithmetic: dot_f16's two
 * accumulators over 32-element steps and its reduction, the softmax in the
 * same order (exp, then the sum in double), and axpy_f16's fused
 * multiply-add per 16 lanes, so the bits are those of the loop. */
#define LDH16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))

TGT static inline __attribute__((always_inline)) void
att_wide_body(int nc, const uint16_t *q16, const uint16_t *k, const uint16_t *v, size_t stride,
              int n_pos, float scale, float *sc, float *out)
{
    __m512 q[8], o[8];
    for (int c = 0; c < nc; c++) {
        q[c] = LDH16(q16 + 16 * c);
        o[c] = _mm512_setzero_ps();
    }
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *kr = k + (size_t)p * stride;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (int c = 0; c < nc; c += 2) {
            s0 = _mm512_fmadd_ps(LDH16(kr + 16 * c), q[c], s0);
            s1 = _mm512_fmadd_ps(LDH16(kr + 16 * c + 16), q[c + 1], s1);
        }
        sc[p] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) * scale;
    }
    float inv = softmax_scores(sc, n_pos);
    for (int p = 0; p < n_pos; p++) {
        const uint16_t *vr = v + (size_t)p * stride;
        __m512 sv = _mm512_set1_ps(sc[p] * inv);
        for (int c = 0; c < nc; c++)
            o[c] = _mm512_fmadd_ps(sv, LDH16(vr + 16 * c), o[c]);
    }
    for (int c = 0; c < nc; c++)
        _mm512_storeu_ps(out + 16 * c, o[c]);
}
#undef LDH16

TGT static void att_wide(size_t hd, const uint16_t *q16, const uint16_t *k, const uint16_t *v,
                         size_t stride, int n_pos, float scale, float *sc, float *out)
{
    switch (hd) { /* one body per width, so that q and out stay in registers */
    case 64:
        att_wide_body(4, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    case 128:
        att_wide_body(8, q16, k, v, stride, n_pos, scale, sc, out);
        break;
    default:
        break; /* the caller only passes these */
    }
}

/* ---- panels: matrix x matrix with the tokens in the lanes ----
 *
 * For a batch (prompt processing), 16 activation rows (tokens) are laid out
 * once per matmul as a panel in which zmm lane t holds token t: per 32-block
 * eight zmm of quants (group g: elements 4g..4g+3 of each token), then the 16
 * token scales as floats, then 16 int32 corrections. A weight row's 4 bytes
 * are broadcast to all lanes straight from memory (an embedded broadcast
 * folded into the and/xor that makes them unsigned), so one vpdpbusd does 4
 * products for 16 tokens and each weight byte is read once per 16 tokens;
 * the float work (convert, scale, accumulate) is once per block and 16
 * tokens instead of once per block and token. Nothing of the weights is
 * copied or repacked (they stay mapped).
 *
 * Q8_0 weights are made unsigned by +128 (xor 0x80): the correction is
 * -128 * (sum of the token's block quants). Q4_0 nibbles are unsigned
 * already: low nibbles (elements 0..15) by and 0x0F, high ones (16..31) by
 * and 0xF0, i.e. 16 * q, summed apart and shifted back (exact); the
 * correction is -8 * (sum of the block quants). */

#define PANEL_BLK 640 /* bytes per 32-block of a Q8_0 panel */

TGT static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

TGT static inline __attribute__((always_inline)) void
panel_prep_q8_body(const void *aq, size_t a_stride, int nt, void *dst, size_t n, int bias_mul)
{
    uint8_t *o = dst;
    for (size_t b = 0; b < n / QK; b++, o += PANEL_BLK) {
        uint32_t *q = (uint32_t *)o;
        float *d = (float *)(o + 512);
        int32_t *bias = (int32_t *)(o + 576);
        for (int t = 0; t < 16; t++) {
            if (t >= nt) {
                for (int g = 0; g < 8; g++)
                    q[g * 16 + t] = 0;
                d[t] = 0;
                bias[t] = 0;
                continue;
            }
            const blk_q8_0 *y = (const blk_q8_0 *)((const uint8_t *)aq + (size_t)t * a_stride) + b;
            int s = 0;
            for (int g = 0; g < 8; g++)
                q[g * 16 + t] = ld32(y->qs + 4 * g);
            for (int i = 0; i < QK; i++)
                s += y->qs[i];
            d[t] = f16_lut[y->d];
            bias[t] = -bias_mul * s;
        }
    }
}

TGT static void panel_prep_q8_0(const void *aq, size_t a_stride, int nt, void *dst, size_t n)
{
    panel_prep_q8_body(aq, a_stride, nt, dst, n, 128);
}

TGT static void panel_prep_q4_0(const void *aq, size_t a_stride, int nt, void *dst, size_t n)
{
    panel_prep_q8_body(aq, a_stride, nt, dst, n, 8);
}

/* Writes acc[r] (lane t = token t) to y[t*ys + r] for t < nt. */
TGT static inline __attribute__((always_inline)) void panel_store(const __m512 *acc, int NR, int nt,
                                                                  float *y, size_t ys)
{
    float tmp[4][16];
    for (int r = 0; r < NR; r++)
        _mm512_storeu_ps(tmp[r], acc[r]);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < NR; r++)
            y[(size_t)t * ys + r] = tmp[r][t];
}

TGT static inline __attribute__((always_inline)) void gemm_q8_body(size_t n, const uint8_t *w,
                                                                   size_t ws, const uint8_t *pa,
                                                                   int nt, float *y, size_t ys,
                                                                   const int NR, const int Q4)
{
    __m512 acc[4];
    for (int r = 0; r < NR; r++)
        acc[r] = _mm512_setzero_ps();
    const __m512i c80 = _mm512_set1_epi8((char)0x80), c0f = _mm512_set1_epi8(0x0F),
                  cf0 = _mm512_set1_epi8((char)0xF0);
    const size_t bs = Q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    for (size_t b = 0; b < n / QK; b++, pa += PANEL_BLK) {
        __m512i av[8];
        for (int g = 0; g < 8; g++)
            av[g] = _mm512_loadu_si512(pa + 64 * g);
        const __m512 da = _mm512_loadu_ps((const float *)(pa + 512));
        const __m512i bias = _mm512_loadu_si512(pa + 576);
        for (int r = 0; r < NR; r++) {
            const uint8_t *x = w + (size_t)r * ws + b * bs;
            __m512i s;
            if (Q4) {
                __m512i lo = bias, hi = _mm512_setzero_si512();
                for (int j = 0; j < 4; j++) {
                    __m512i bw = _mm512_set1_epi32((int)ld32(x + 2 + 4 * j));
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(bw, c0f), av[j]);
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(bw, cf0), av[j + 4]);
                }
                s = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
            } else {
                s = bias;
                for (int j = 0; j < 8; j++)
                    s = _mm512_dpbusd_epi32(
                        s, _mm512_xor_si512(_mm512_set1_epi32((int)ld32(x + 2 + 4 * j)), c80),
                        av[j]);
            }
            uint16_t h;
            memcpy(&h, x, 2);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s),
                                     _mm512_mul_ps(da, _mm512_set1_ps(f16_lut[h])), acc[r]);
        }
    }
    panel_store(acc, NR, nt, y, ys);
}

#define GEMM_FN(NAME, BODY, Q4)                                                                    \
    TGT static void NAME(size_t n, const void *w, size_t ws, int nr, const void *pa, int nt,       \
                         float *y, size_t ys)                                                      \
    {                                                                                              \
        switch (nr) {                                                                              \
        case 1:                                                                                    \
            BODY(n, w, ws, pa, nt, y, ys, 1, Q4);                                                  \
            break;                                                                                 \
        case 2:                                                                                    \
            BODY(n, w, ws, pa, nt, y, ys, 2, Q4);                                                  \
            break;                                                                                 \
        case 3:                                                                                    \
            BODY(n, w, ws, pa, nt, y, ys, 3, Q4);                                                  \
            break;                                                                                 \
        default:                                                                                   \
            BODY(n, w, ws, pa, nt, y, ys, 4, Q4);                                                  \
            break;                                                                                 \
        }                                                                                          \
    }
GEMM_FN(gemm_q8_0, gemm_q8_body, 0)
GEMM_FN(gemm_q4_0, gemm_q8_body, 1)

/* ---- AMX: the same panels through the tile unit ----
 *
 * On CPUs with AMX-INT8 (Sapphire Rapids on) one tdpbssd/tdpbusd does a
 * 16x16 block of int8 dot products over a 32-element block in one
 * instruction, where vpdpbusd needs 8 per weight row. The panel block is
 * already the B operand's layout (row g: 16 tokens x elements 4g..4g+3), so
 * the panels stay as they are: C[row][token] = the integer block sum of the
 * VNNI kernel above, then the same float chain, so the bits are those of
 * gemm_q8_0/gemm_q4_0 (the panel's bias row is not needed: both operands
 * are signed, tdpbssd). Q8_0 weights are the A operand straight from the
 * mapping (16 rows of 32 quants, row_bytes apart); Q4_0 nibbles are unpacked
 * to q - 8 into a buffer first, a group of blocks at a time and once for
 * all the tokens. A call takes 16 rows and all the panels. The tile
 * instructions are written as asm: gcc 12's intrinsics tell the compiler
 * neither that tileloadd reads memory nor that ldtilecfg reads all 64
 * bytes, so the stores feeding them could be moved or dropped. */

#define TGT_AMX                                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,amx-tile,amx-"       \
                          "int8")))

struct amx_cfg {
    uint8_t palette, start_row, zero[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Two tile configurations. AMX_CFG_Q8 (Q8_0, Q4_0): tmm0 and tmm3: C (16
 * weight rows x 16 int32 token sums), tmm1 and tmm4: A (16 rows x 32 weight
 * quants), tmm2 and tmm5: B (one panel block: 8 groups x 64 bytes).
 * AMX_CFG_K (Q4_K, Q6_K): all eight 16 x 64 bytes, K = 64 per instruction.
 * The configuration is thread state; it is loaded only when a thread needs
 * the other one, since ldtilecfg (which also zeroes the tiles) on every call
 * was measurably slower. This assumes that nothing else in the process
 * configures the tiles of a thread that runs these kernels. */
enum { AMX_CFG_Q8 = 1, AMX_CFG_K = 2 };
static _Thread_local int amx_configured;
TGT_AMX static inline void amx_config(int which)
{
    if (amx_configured == which)
        return;
    amx_configured = which;
    struct amx_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
    }
    if (which == AMX_CFG_Q8) {
        c.colsb[1] = c.colsb[4] = 32;
        c.rows[2] = c.rows[5] = 8;
        c.colsb[6] = c.colsb[7] = 0;
        c.rows[6] = c.rows[7] = 0;
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(c));
}

/* Tile loads and stores name the memory they touch (a 16x32 A buffer, a
 * 16x16 C buffer) rather than clobber all of it, so that acc[] can stay in
 * registers across them; the volatile asm keeps them in order. */
#define AMX_LOAD(T, P, S)                                                                          \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #T ::"r"(P), "r"((long)(S)),                     \
                     "m"(*(const uint8_t(*)[16][32])(P)))

/* acc[m] (lane t: token t) -> y[t*ys + m] for t < nt: a 16x16 transpose in
 * registers (64 shuffles), then one store per token. */
TGT_AMX static inline __attribute__((always_inline)) void amx_store(const __m512 *acc, int nt,
                                                                    float *y, size_t ys)
{
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]);
    }
    /* u[4i + j], 128-bit lane L: rows 4i..4i+3 at column 4L + j */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]),
                c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m512 p0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44),
               p1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xEE),
               q0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44),
               q1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xEE);
        __m512 o[4] = {_mm512_shuffle_f32x4(p0, q0, 0x88), _mm512_shuffle_f32x4(p0, q0, 0xDD),
                       _mm512_shuffle_f32x4(p1, q1, 0x88), _mm512_shuffle_f32x4(p1, q1, 0xDD)};
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
            if (4 * l + j < nt)
                _mm512_storeu_ps(y + (size_t)(4 * l + j) * ys, o[l]);
    }
}

/* One block's integer sums, C = A . B, stored to @C: A is 16 rows of 32
 * quants @AS bytes apart, B the panel block @PA. Two sets of tiles (0-2,
 * 3-5) alternate by block, so that a block's tile work need not wait for
 * the previous block's C to be stored. */
#define AMX_BLOCK(TC, TA, TB, A, AS, PA, C)                                                        \
    do {                                                                                           \
        __asm__ volatile("tilezero %%tmm" #TC ::);                                                 \
        AMX_LOAD(TA, A, AS);                                                                       \
        AMX_LOAD(TB, PA, 64);                                                                      \
        __asm__ volatile("tdpbssd %%tmm" #TB ", %%tmm" #TA ", %%tmm" #TC ::);                      \
        __asm__ volatile("tilestored %%tmm" #TC ", (%1,%2,1)"                                      \
                         : "=m"(*(int32_t(*)[16][16])(C))                                          \
                         : "r"(C), "r"(64L));                                                      \
    } while (0)

/* acc[m] += float(c[m]) * (da * d of row m's block at x + m*ws): the float
 * chain of gemm_q8_body. */
TGT_AMX static inline __attribute__((always_inline)) void
amx_float(__m512 *acc, const int32_t (*c)[16], const uint8_t *pa, const uint8_t *x, size_t ws)
{
    const __m512 da = _mm512_loadu_ps((const float *)(pa + 512));
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++) {
        uint16_t h;
        memcpy(&h, x + (size_t)m * ws, 2);
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[m])),
                                 _mm512_mul_ps(da, _mm512_set1_ps(f16_lut[h])), acc[m]);
    }
}

/* Q4_0 blocks b0..b1 of 16 rows unpacked to a4[b - b0]: per row the low
 * nibbles (elements 0..15) then the high ones, as signed q - 8. Done a group
 * ahead of the tile loads that read them, which would otherwise wait for
 * the stores just made. */
#define AMX_GROUP  16 /* blocks unpacked at a time: 8 KB */
#define AMX_PANELS 8  /* panels whose sums stay in acc_mem: 8 KB */
TGT_AMX static inline __attribute__((always_inline)) void
amx_unpack_q4(const uint8_t *w, size_t ws, size_t b0, size_t b1, uint8_t (*a4)[16][32])
{
    const __m256i shift = _mm256_set_epi64x(4, 4, 0, 0), c0f = _mm256_set1_epi8(0x0F),
                  c8 = _mm256_set1_epi8(8);
    for (size_t b = b0; b < b1; b++)
        for (int m = 0; m < 16; m++) {
            const uint8_t *q = w + (size_t)m * ws + b * sizeof(blk_q4_0) + 2;
            __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
            v = _mm256_and_si256(_mm256_srlv_epi64(v, shift), c0f);
            _mm256_store_si256((__m256i *)a4[b - b0][m], _mm256_sub_epi8(v, c8));
        }
}

/* Blocks b0..b1 of one panel @pa into acc (16 rows, lane t: token t); A is
 * a4 (Q4_0, unpacked from block b0 on) or the weights. The float work of
 * block b-1 comes after the tile work of block b, so that it does not wait
 * for C to be stored. */
TGT_AMX static inline __attribute__((always_inline)) void
amx_blocks(__m512 *acc, const uint8_t *w, size_t ws, const uint8_t *pa, size_t b0, size_t b1,
           uint8_t (*a4)[16][32], const int Q4)
{
    _Alignas(64) int32_t c[2][16][16];
    const size_t bs = Q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    for (size_t b = b0; b < b1; b++) {
        const uint8_t *pb = pa + b * PANEL_BLK, *a = w + b * bs + 2;
        size_t as = ws;
        if (Q4) {
            a = a4[b - b0][0];
            as = 32;
        }
        if (b & 1)
            AMX_BLOCK(3, 4, 5, a, as, pb, c[1]);
        else
            AMX_BLOCK(0, 1, 2, a, as, pb, c[0]);
        if (b > b0)
            amx_float(acc, c[(b - 1) & 1], pb - PANEL_BLK, w + (b - 1) * bs, ws);
    }
    amx_float(acc, c[(b1 - 1) & 1], pa + (b1 - 1) * PANEL_BLK, w + (b1 - 1) * bs, ws);
}

/* 16 weight rows with all @nt tokens (panel p at pa + p *
 * QUANT_PANEL_BYTES(n)). For Q4_0 groups of blocks outside, panels inside,
 * so that a block is unpacked once for all the tokens; the sums of up to
 * AMX_PANELS panels wait in acc_mem between groups. (Q8_0 weights would
 * gain nothing by that, and it cost them a few per cent.) */
TGT_AMX static inline __attribute__((always_inline)) void
gemm_amx_body(size_t n, const uint8_t *w, size_t ws, const uint8_t *pa, int nt, float *y, size_t ys,
              const int Q4)
{
    _Alignas(64) uint8_t a4[AMX_GROUP][16][32];
    _Alignas(64) float acc_mem[AMX_PANELS][16][16];
    const size_t nb = n / QK, pbytes = QUANT_PANEL_BYTES(n);
    const int np = (nt + 15) / 16;
    amx_config(AMX_CFG_Q8);
    if (!Q4) { /* nothing to unpack: panel by panel, all the blocks at once */
        for (int p = 0; p < np; p++) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int m = 0; m < 16; m++)
                acc[m] = _mm512_setzero_ps();
            amx_blocks(acc, w, ws, pa + (size_t)p * pbytes, 0, nb, a4, Q4);
            amx_store(acc, nt - 16 * p < 16 ? nt - 16 * p : 16, y + (size_t)p * 16 * ys, ys);
        }
        return;
    }
    for (int p0 = 0; p0 < np; p0 += AMX_PANELS) {
        int pn = np - p0 < AMX_PANELS ? np - p0 : AMX_PANELS;
        memset(acc_mem, 0, sizeof acc_mem);
        for (size_t b0 = 0; b0 < nb; b0 += AMX_GROUP) {
            size_t b1 = b0 + AMX_GROUP < nb ? b0 + AMX_GROUP : nb;
            amx_unpack_q4(w, ws, b0, b1, a4);
            for (int p = 0; p < pn; p++) {
                __m512 acc[16];
#pragma GCC unroll 16
                for (int m = 0; m < 16; m++)
                    acc[m] = _mm512_load_ps(acc_mem[p][m]);
                amx_blocks(acc, w, ws, pa + (size_t)(p0 + p) * pbytes, b0, b1, a4, Q4);
#pragma GCC unroll 16
                for (int m = 0; m < 16; m++)
                    _mm512_store_ps(acc_mem[p][m], acc[m]);
            }
        }
        for (int p = 0; p < pn; p++) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int m = 0; m < 16; m++)
                acc[m] = _mm512_load_ps(acc_mem[p][m]);
            int t0 = (p0 + p) * 16;
            amx_store(acc, nt - t0 < 16 ? nt - t0 : 16, y + (size_t)t0 * ys, ys);
        }
    }
}

/* 16 rows through the tile unit, all the tokens in one call; a shorter
 * tail (the last rows of a matrix whose height is no multiple of 16)
 * through the VNNI kernel, 4 rows and one panel at a time. */
#define GEMM_AMX_FN(NAME, VNNI, BODY, ARG)                                                         \
    TGT_AMX static void NAME(size_t n, const void *w, size_t ws, int nr, const void *pa, int nt,   \
                             float *y, size_t ys)                                                  \
    {                                                                                              \
        if (nr == 16) {                                                                            \
            BODY(n, w, ws, pa, nt, y, ys, ARG);                                                    \
            return;                                                                                \
        }                                                                                          \
        for (int c = 0; c < nt; c += 16)                                                           \
            for (int r = 0; r < nr; r += 4)                                                        \
                VNNI(n, (const uint8_t *)w + (size_t)r * ws, ws, nr - r < 4 ? nr - r : 4,          \
                     (const uint8_t *)pa + (size_t)(c / 16) * QUANT_PANEL_BYTES(n),                \
                     nt - c < 16 ? nt - c : 16, y + (size_t)c * ys + r, ys);                       \
    }
GEMM_AMX_FN(gemm_q8_0_amx, gemm_q8_0, gemm_amx_body, 0)
GEMM_AMX_FN(gemm_q4_0_amx, gemm_q4_0, gemm_amx_body, 1)

/* Q8_K panels (Q4_K and Q6_K weights share them, so that a Q6_K attn_v
 * joins Q4_K Q and K in one job), per 256-block: 64 zmm of quants (group g:
 * elements 4g..4g+3), the 16 token scales, then 4 zmm of int16 pairs
 * (S[2i], S[2i+1]) with S[j] the sum of the token's quants of 32-element
 * sub-block j (Q4_K's mins), then 8 zmm of int16 pairs (B[2i], B[2i+1])
 * with B[j] the token's Q8_K bsums (sums of 16, Q6_K's -32).
 * A Q4_K chunk of 32 bytes holds sub-blocks 2ch (low nibbles) and 2ch+1
 * (high, taken as 16 * q and shifted back); the sub-block sums are scaled
 * by the 6-bit scales in integers, so a block's sums are exact and its float
 * arithmetic is the tile kernel's (tile_q4_K_body): same bits. */
#define PANEL_KBLK (64 * 64 + 64 + 256 + 512)
#define PANEL_KS32 (64 * 64 + 64)
#define PANEL_KS16 (64 * 64 + 64 + 256)
_Static_assert(PANEL_KBLK <= QUANT_PANEL_BYTES(QK_K), "a Q8_K panel block fits its share");

TGT static void panel_prep_q8_K(const void *aq, size_t a_stride, int nt, void *dst, size_t n)
{
    uint8_t *o = dst;
    for (size_t b = 0; b < n / QK_K; b++, o += PANEL_KBLK) {
        uint32_t *q = (uint32_t *)o;
        float *d = (float *)(o + 4096);
        int16_t *sp = (int16_t *)(o + PANEL_KS32), *s16 = (int16_t *)(o + PANEL_KS16);
        for (int t = 0; t < 16; t++) {
            if (t >= nt) {
                for (int g = 0; g < 64; g++)
                    q[g * 16 + t] = 0;
                d[t] = 0;
                for (int i = 0; i < 4; i++)
                    sp[i * 32 + 2 * t] = sp[i * 32 + 2 * t + 1] = 0;
                for (int i = 0; i < 8; i++)
                    s16[i * 32 + 2 * t] = s16[i * 32 + 2 * t + 1] = 0;
                continue;
            }
            const blk_q8_K *y = (const blk_q8_K *)((const uint8_t *)aq + (size_t)t * a_stride) + b;
            for (int g = 0; g < 64; g++)
                q[g * 16 + t] = ld32(y->qs + 4 * g);
            d[t] = y->d;
            for (int i = 0; i < 4; i++) {
                sp[i * 32 + 2 * t] = (int16_t)(y->bsums[4 * i] + y->bsums[4 * i + 1]);
                sp[i * 32 + 2 * t + 1] = (int16_t)(y->bsums[4 * i + 2] + y->bsums[4 * i + 3]);
            }
            for (int i = 0; i < 8; i++) {
                s16[i * 32 + 2 * t] = y->bsums[2 * i];
                s16[i * 32 + 2 * t + 1] = y->bsums[2 * i + 1];
            }
        }
    }
}

TGT static inline __attribute__((always_inline)) void gemm_q4_K_body(size_t n, const uint8_t *w,
                                                                     size_t ws, const uint8_t *pa,
                                                                     int nt, float *y, size_t ys,
                                                                     const int NR, const int unused)
{
    (void)unused;
    __m512 acc[4];
    for (int r = 0; r < NR; r++)
        acc[r] = _mm512_setzero_ps();
    const __m512i c0f = _mm512_set1_epi8(0x0F), cf0 = _mm512_set1_epi8((char)0xF0);
    for (size_t b = 0; b < n / QK_K; b++, pa += PANEL_KBLK) {
        const __m512 da = _mm512_loadu_ps((const float *)(pa + 4096));
        uint8_t sm[4][16];
        __m512i I[4], M[4];
        for (int r = 0; r < NR; r++) {
            const blk_q4_K *x = (const blk_q4_K *)(w + (size_t)r * ws) + b;
            q4_K_scales(x->scales, sm[r]);
            /* the mins: sum_j m_j S_j as int16 pairs */
            M[r] = _mm512_setzero_si512();
            for (int i = 0; i < 4; i++)
                M[r] =
                    _mm512_dpwssd_epi32(M[r], _mm512_loadu_si512(pa + PANEL_KS32 + 64 * i),
                                        _mm512_set1_epi32((int)((uint32_t)sm[r][8 + 2 * i] |
                                                                (uint32_t)sm[r][9 + 2 * i] << 16)));
            I[r] = _mm512_setzero_si512();
        }
        for (int ch = 0; ch < 4; ch++) {
            __m512i av[16];
            for (int g = 0; g < 16; g++)
                av[g] = _mm512_loadu_si512(pa + 64 * (16 * ch + g));
            for (int r = 0; r < NR; r++) {
                const uint8_t *qs = ((const blk_q4_K *)(w + (size_t)r * ws) + b)->qs + 32 * ch;
                __m512i lo = _mm512_setzero_si512(), hi = lo;
                for (int i = 0; i < 8; i++) {
                    __m512i bw = _mm512_set1_epi32((int)ld32(qs + 4 * i));
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(bw, c0f), av[i]);
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(bw, cf0), av[8 + i]);
                }
                I[r] = _mm512_add_epi32(I[r],
                                        _mm512_mullo_epi32(lo, _mm512_set1_epi32(sm[r][2 * ch])));
                I[r] = _mm512_add_epi32(I[r],
                                        _mm512_mullo_epi32(_mm512_srai_epi32(hi, 4),
                                                           _mm512_set1_epi32(sm[r][2 * ch + 1])));
            }
        }
        for (int r = 0; r < NR; r++) {
            const blk_q4_K *x = (const blk_q4_K *)(w + (size_t)r * ws) + b;
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I[r]),
                                     _mm512_mul_ps(da, _mm512_set1_ps(f16_lut[x->d])), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M[r]),
                                      _mm512_mul_ps(da, _mm512_set1_ps(f16_lut[x->dmin])), acc[r]);
        }
    }
    panel_store(acc, NR, nt, y, ys);
}
GEMM_FN(gemm_q4_K, gemm_q4_K_body, 0)

/* Q6_K . Q8_K panels: each weight row's block is unpacked once into its 256
 * 6-bit values (unsigned, natural order) on the stack, whose 4-byte groups
 * are then broadcast into vpdpbusd against the tokens' quants. Per 16-element
 * sub-block j the exact sum D_j is scaled by the signed 8-bit scale in
 * integers; the -32 is -32 * sum_j sc_j B_j over the bsums (vpdpwssd on the
 * int16 pairs). The block's integer sum is the tile kernel's
 * (tile_q6_K_body) and so is its float chain: same bits. */
TGT static inline __attribute__((always_inline)) void gemm_q6_K_body(size_t n, const uint8_t *w,
                                                                     size_t ws, const uint8_t *pa,
                                                                     int nt, float *y, size_t ys,
                                                                     const int NR, const int unused)
{
    (void)unused;
    __m512 acc[4];
    for (int r = 0; r < NR; r++)
        acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i sh02 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    _Alignas(64) uint8_t qv[4][QK_K];
    _Alignas(64) int16_t sc16[4][16];
    _Alignas(64) int32_t sc32[4][16];
    for (size_t b = 0; b < n / QK_K; b++, pa += PANEL_KBLK) {
        const __m512 da = _mm512_loadu_ps((const float *)(pa + 4096));
        __m512i I[4];
        for (int r = 0; r < NR; r++) {
            const blk_q6_K *x = (const blk_q6_K *)(w + (size_t)r * ws) + b;
            for (int h = 0; h < 2; h++) {
                __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
                /* [qh | qh >> 2]: a broadcast load and a shift, no shuffle */
                __m512i H = _mm512_srlv_epi16(_mm512_broadcast_i64x4(LDY(x->qh + 32 * h)), sh02);
                _mm512_store_si512(qv[r] + 128 * h,
                                   _mm512_or_si512(_mm512_and_si512(L, m4),
                                                   _mm512_slli_epi16(_mm512_and_si512(H, m3), 4)));
                _mm512_store_si512(
                    qv[r] + 128 * h + 64,
                    _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 4), m3), 4)));
            }
            /* the scales as int16 pairs (for the -32) and as int32 (for the
             * sub-block sums), broadcast from memory below */
            __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales);
            _mm256_store_si256((__m256i *)sc16[r], _mm256_cvtepi8_epi16(sc8));
            _mm512_store_si512(sc32[r], _mm512_cvtepi8_epi32(sc8));
            /* the -32: sum_j sc_j B_j as int16 pairs */
            __m512i M = _mm512_setzero_si512();
            for (int i = 0; i < 8; i++)
                M = _mm512_dpwssd_epi32(M, _mm512_loadu_si512(pa + PANEL_KS16 + 64 * i),
                                        _mm512_set1_epi32((int)ld32(sc16[r] + 2 * i)));
            I[r] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(M, 5));
        }
        for (int j = 0; j < 16; j += 2) {
            __m512i av[8];
            for (int g = 0; g < 8; g++)
                av[g] = _mm512_loadu_si512(pa + 64 * (4 * j + g));
            for (int r = 0; r < NR; r++) {
                __m512i D0 = _mm512_setzero_si512(), D1 = D0;
                for (int g = 0; g < 4; g++) {
                    D0 = _mm512_dpbusd_epi32(
                        D0, _mm512_set1_epi32((int)ld32(qv[r] + 16 * j + 4 * g)), av[g]);
                    D1 = _mm512_dpbusd_epi32(
                        D1, _mm512_set1_epi32((int)ld32(qv[r] + 16 * j + 16 + 4 * g)), av[4 + g]);
                }
                I[r] =
                    _mm512_add_epi32(I[r], _mm512_mullo_epi32(D0, _mm512_set1_epi32(sc32[r][j])));
                I[r] = _mm512_add_epi32(I[r],
                                        _mm512_mullo_epi32(D1, _mm512_set1_epi32(sc32[r][j + 1])));
            }
        }
        for (int r = 0; r < NR; r++) {
            const blk_q6_K *x = (const blk_q6_K *)(w + (size_t)r * ws) + b;
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I[r]),
                                     _mm512_mul_ps(da, _mm512_set1_ps(f16_lut[x->d])), acc[r]);
        }
    }
    panel_store(acc, NR, nt, y, ys);
}
GEMM_FN(gemm_q6_K, gemm_q6_K_body, 0)

/* ---- AMX for the Q8_K panels (Q4_K and Q6_K weights) ----
 *
 * A Q8_K panel block is already the B operand's layout (64 elements = 16
 * groups x 16 tokens x 4 bytes = one 16 x 64 tile), but the sub-block
 * scales (32 elements for Q4_K, 16 for Q6_K) must multiply the integer sums
 * before they are added. Instead of a tile product and an integer multiply
 * per sub-block, each weight is scaled first, v = q * sc (Q4_K: 0..945) or
 * (q - 32) * sc (Q6_K: -4064..4096), and split into two int8 operands,
 * lo = v & 127 and hi = v >> 7, so that v = 128 hi + lo: two tile products
 * of K = 64 per 64 elements give the block's exact sum
 * I = sum v a = 128 C_hi + C_lo, the integer of the VNNI kernels (int32
 * additions in another order, all exact). Q4_K's mins term stays theirs
 * (vpdpwssd on the panel's sub-block sums) and so does the float chain, so
 * the bits are those of gemm_q4_K/gemm_q6_K. The weights are unpacked a
 * group of blocks at a time for all the tokens, as for Q4_0. */
#define AMX_KGROUP 2 /* blocks unpacked at a time: 16 KB of operands */

struct amx_kw {
    _Alignas(64) int8_t hi[AMX_KGROUP][16][QK_K]; /* A: row m, element k */
    _Alignas(64) int8_t lo[AMX_KGROUP][16][QK_K];
    uint32_t mins[AMX_KGROUP][16][4]; /* Q4_K: mins as int16 pairs */
    float d[AMX_KGROUP][16], dmin[AMX_KGROUP][16];
};

/* 32 int16 scaled weights -> their lo and hi bytes */
TGT_AMX static inline __attribute__((always_inline)) void amx_split(__m512i v, int8_t *hi,
                                                                    int8_t *lo)
{
    _mm256_store_si256((__m256i *)lo,
                       _mm512_cvtepi16_epi8(_mm512_and_si512(v, _mm512_set1_epi16(127))));
    _mm256_store_si256((__m256i *)hi, _mm512_cvtepi16_epi8(_mm512_srai_epi16(v, 7)));
}

/* 32 weights (bytes, unsigned) minus @off, times scale s0 (words 0..15) and
 * s1 (16..31), into hi/lo */
TGT_AMX static inline __attribute__((always_inline)) void
amx_scale32(__m256i q, int off, int s0, int s1, int8_t *hi, int8_t *lo)
{
    __m512i v = _mm512_sub_epi16(_mm512_cvtepu8_epi16(q), _mm512_set1_epi16((short)off));
    __m512i s = _mm512_inserti64x4(_mm512_set1_epi16((short)s0), _mm256_set1_epi16((short)s1), 1);
    amx_split(_mm512_mullo_epi16(v, s), hi, lo);
}

TGT_AMX static inline __attribute__((always_inline)) void
amx_unpack_q4_K(const blk_q4_K *x, struct amx_kw *kw, int i, int m)
{
    const __m256i c0f = _mm256_set1_epi8(0x0F);
    int8_t *hi = kw->hi[i][m], *lo = kw->lo[i][m];
    uint8_t sm[16];
    q4_K_scales(x->scales, sm);
    for (int ch = 0; ch < 4; ch++) {
        /* low nibbles: sub-block 2ch, high nibbles: 2ch + 1 */
        __m256i q = LDY(x->qs + 32 * ch);
        amx_scale32(_mm256_and_si256(q, c0f), 0, sm[2 * ch], sm[2 * ch], hi + 64 * ch,
                    lo + 64 * ch);
        amx_scale32(_mm256_and_si256(_mm256_srli_epi16(q, 4), c0f), 0, sm[2 * ch + 1],
                    sm[2 * ch + 1], hi + 64 * ch + 32, lo + 64 * ch + 32);
    }
    for (int j = 0; j < 4; j++)
        kw->mins[i][m][j] = (uint32_t)sm[8 + 2 * j] | (uint32_t)sm[9 + 2 * j] << 16;
    kw->d[i][m] = f16_lut[x->d];
    kw->dmin[i][m] = f16_lut[x->dmin];
}

TGT_AMX static inline __attribute__((always_inline)) void
amx_unpack_q6_K(const blk_q6_K *x, struct amx_kw *kw, int i, int m)
{
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    const __m512i sh02 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    int8_t *hi = kw->hi[i][m], *lo = kw->lo[i][m];
    for (int h = 0; h < 2; h++) {
        /* the 6-bit values in natural order, as gemm_q6_K_body makes them */
        __m512i L = _mm512_loadu_si512(x->ql + 64 * h);
        __m512i H = _mm512_srlv_epi16(_mm512_broadcast_i64x4(LDY(x->qh + 32 * h)), sh02);
        __m512i z[2];
        z[0] =
            _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_slli_epi16(_mm512_and_si512(H, m3), 4));
        z[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                               _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(H, 4), m3), 4));
        for (int k = 0; k < 4; k++) {
            int e = 128 * h + 32 * k; /* elements e..e+31: sub-blocks e/16, e/16 + 1 */
            __m256i q =
                k % 2 ? _mm512_extracti64x4_epi64(z[k / 2], 1) : _mm512_castsi512_si256(z[k / 2]);
            amx_scale32(q, 32, x->scales[e / 16], x->scales[e / 16 + 1], hi + e, lo + e);
        }
    }
    kw->d[i][m] = f16_lut[x->d];
}

/* Exact-span memory operands for the tile loads: A rows are QK_K apart */
#define AMX_KLOAD(T, P, S, SPAN)                                                                   \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #T ::"r"(P), "r"((long)(S)),                     \
                     "m"(*(const uint8_t(*)[SPAN])(P)))
#define AMX_KCHUNK(CH, CL, TB, HI, LO, PB, J)                                                      \
    do {                                                                                           \
        AMX_KLOAD(TB, (PB) + 1024 * (J), 64, 1024);                                                \
        AMX_KLOAD(4, (HI) + 64 * (J), QK_K, 15 * QK_K + 64);                                       \
        AMX_KLOAD(5, (LO) + 64 * (J), QK_K, 15 * QK_K + 64);                                       \
        __asm__ volatile("tdpbssd %%tmm" #TB ", %%tmm4, %%tmm" #CH ::);                            \
        __asm__ volatile("tdpbssd %%tmm" #TB ", %%tmm5, %%tmm" #CL ::);                            \
    } while (0)
/* One block's C_hi and C_lo (tiles CH, CL) for 16 rows, stored to @OH, @OL */
#define AMX_KBLOCK(CH, CL, HI, LO, PB, OH, OL)                                                     \
    do {                                                                                           \
        __asm__ volatile("tilezero %%tmm" #CH ::);                                                 \
        __asm__ volatile("tilezero %%tmm" #CL ::);                                                 \
        AMX_KCHUNK(CH, CL, 6, HI, LO, PB, 0);                                                      \
        AMX_KCHUNK(CH, CL, 7, HI, LO, PB, 1);                                                      \
        AMX_KCHUNK(CH, CL, 6, HI, LO, PB, 2);                                                      \
        AMX_KCHUNK(CH, CL, 7, HI, LO, PB, 3);                                                      \
        __asm__ volatile("tilestored %%tmm" #CH ", (%1,%2,1)"                                      \
                         : "=m"(*(int32_t(*)[16][16])(OH))                                         \
                         : "r"(OH), "r"(64L));                                                     \
        __asm__ volatile("tilestored %%tmm" #CL ", (%1,%2,1)"                                      \
                         : "=m"(*(int32_t(*)[16][16])(OL))                                         \
                         : "r"(OL), "r"(64L));                                                     \
    } while (0)

/* acc[m] (lane t: token t) gets block i of the group: the float chain of
 * gemm_q4_K_body (Q6 = 0) or gemm_q6_K_body (Q6 = 1). */
TGT_AMX static inline __attribute__((always_inline)) void
amx_kfloat(__m512 *acc, int32_t (*c)[16][16], const uint8_t *pb, const struct amx_kw *kw, int i,
           const int Q6)
{
    const __m512 da = _mm512_loadu_ps((const float *)(pb + 4096));
    __m512i S[4];
    for (int j = 0; !Q6 && j < 4; j++)
        S[j] = _mm512_loadu_si512(pb + PANEL_KS32 + 64 * j);
#pragma GCC unroll 16
    for (int m = 0; m < 16; m++) {
        __m512i I = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(c[0][m]), 7),
                                     _mm512_load_si512(c[1][m]));
        acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I),
                                 _mm512_mul_ps(da, _mm512_set1_ps(kw->d[i][m])), acc[m]);
        if (!Q6) {
            __m512i M = _mm512_setzero_si512();
            for (int j = 0; j < 4; j++)
                M = _mm512_dpwssd_epi32(M, S[j], _mm512_set1_epi32((int)kw->mins[i][m][j]));
            acc[m] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M),
                                      _mm512_mul_ps(da, _mm512_set1_ps(kw->dmin[i][m])), acc[m]);
        }
    }
}

/* Blocks b0..b1 of one panel @pa into acc; the float work of block b-1
 * after the tile work of block b, with two sets of C tiles (0-1, 2-3). */
TGT_AMX static inline __attribute__((always_inline)) void
amx_kblocks(__m512 *acc, const uint8_t *pa, size_t b0, size_t b1, const struct amx_kw *kw,
            const int Q6)
{
    _Alignas(64) int32_t c[2][2][16][16];
    for (size_t b = b0; b < b1; b++) {
        const uint8_t *pb = pa + b * PANEL_KBLK;
        const int8_t *hi = kw->hi[b - b0][0], *lo = kw->lo[b - b0][0];
        if (b & 1)
            AMX_KBLOCK(2, 3, hi, lo, pb, c[1][0], c[1][1]);
        else
            AMX_KBLOCK(0, 1, hi, lo, pb, c[0][0], c[0][1]);
        if (b > b0)
            amx_kfloat(acc, c[(b - 1) & 1], pb - PANEL_KBLK, kw, (int)(b - 1 - b0), Q6);
    }
    amx_kfloat(acc, c[(b1 - 1) & 1], pa + (b1 - 1) * PANEL_KBLK, kw, (int)(b1 - 1 - b0), Q6);
}

/* 16 weight rows with all @nt tokens, as gemm_amx_body for Q4_0: groups of
 * blocks outside, panels inside. */
TGT_AMX static inline __attribute__((always_inline)) void
gemm_amx_k_body(size_t n, const uint8_t *w, size_t ws, const uint8_t *pa, int nt, float *y,
                size_t ys, const int Q6)
{
    struct amx_kw kw;
    _Alignas(64) float acc_mem[AMX_PANELS][16][16];
    const size_t nb = n / QK_K, pbytes = QUANT_PANEL_BYTES(n);
    const size_t bs = Q6 ? sizeof(blk_q6_K) : sizeof(blk_q4_K);
    const int np = (nt + 15) / 16;
    amx_config(AMX_CFG_K);
    for (int p0 = 0; p0 < np; p0 += AMX_PANELS) {
        int pn = np - p0 < AMX_PANELS ? np - p0 : AMX_PANELS;
        memset(acc_mem, 0, sizeof acc_mem);
        for (size_t b0 = 0; b0 < nb; b0 += AMX_KGROUP) {
            size_t b1 = b0 + AMX_KGROUP < nb ? b0 + AMX_KGROUP : nb;
            for (size_t b = b0; b < b1; b++)
                for (int m = 0; m < 16; m++) {
                    const uint8_t *x = w + (size_t)m * ws + b * bs;
                    if (Q6)
                        amx_unpack_q6_K((const blk_q6_K *)x, &kw, (int)(b - b0), m);
                    else
                        amx_unpack_q4_K((const blk_q4_K *)x, &kw, (int)(b - b0), m);
                }
            for (int p = 0; p < pn; p++) {
                __m512 acc[16];
#pragma GCC unroll 16
                for (int m = 0; m < 16; m++)
                    acc[m] = _mm512_load_ps(acc_mem[p][m]);
                amx_kblocks(acc, pa + (size_t)(p0 + p) * pbytes, b0, b1, &kw, Q6);
#pragma GCC unroll 16
                for (int m = 0; m < 16; m++)
                    _mm512_store_ps(acc_mem[p][m], acc[m]);
            }
        }
        for (int p = 0; p < pn; p++) {
            __m512 acc[16];
#pragma GCC unroll 16
            for (int m = 0; m < 16; m++)
                acc[m] = _mm512_load_ps(acc_mem[p][m]);
            int t0 = (p0 + p) * 16;
            amx_store(acc, nt - t0 < 16 ? nt - t0 : 16, y + (size_t)t0 * ys, ys);
        }
    }
}
GEMM_AMX_FN(gemm_q4_K_amx, gemm_q4_K, gemm_amx_k_body, 0)
GEMM_AMX_FN(gemm_q6_K_amx, gemm_q6_K, gemm_amx_k_body, 1)

/* The Q8_K activation rounding of quant_ref.c (q_q8_K), 16 lanes at a time
 * and with the same bits: the first element of largest magnitude sets the
 * scale, x * iscale rounds half to even (vcvtps2dq under the default
 * rounding mode, as lrintf), clamped at 127. */
TGT static void act_q8_K(const float *x, void *dst, size_t n)
{
    blk_q8_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 am = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            am = _mm512_max_ps(am, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        float amax = _mm512_reduce_max_ps(am), max = 0;
        if (!(amax > 0.f)) { /* zero (or NaN): the scalar path decides */
            quant_ref_quantize_row(GGML_TYPE_Q8_K, x, &y[i], QK_K);
            continue;
        }
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        float iscale = -127.f / max;
        const __m512 is = _mm512_set1_ps(iscale);
        for (int j = 0; j < QK_K; j += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(is, _mm512_loadu_ps(x + j)));
            v = _mm512_min_epi32(v, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtsepi32_epi8(v));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(v);
        }
        y[i].d = 1.f / iscale;
    }
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
    k->tile_prep[GGML_TYPE_Q4_0] = tile_prep_q4_0;
    k->tile_prep[GGML_TYPE_Q8_0] = tile_prep_q8_0;
    k->tile4[GGML_TYPE_Q4_0] = tile4_q4_0;
    k->tile4[GGML_TYPE_Q8_0] = tile4_q8_0;
    k->tile4[GGML_TYPE_Q4_K] = tile4_q4_K;
    k->tile4[GGML_TYPE_Q6_K] = tile4_q6_K;
    k->axpy_f16 = axpy_f16;
    k->dot4[GGML_TYPE_F32] = dot4_f32;
    k->tile4[GGML_TYPE_F32] = tile4_f32;
    k->att_small = att_small;
    k->att_wide = att_wide;
    k->act[GGML_TYPE_Q8_K] = act_q8_K;
    k->panel_prep[GGML_TYPE_Q8_0] = panel_prep_q8_0;
    k->panel_prep[GGML_TYPE_Q4_0] = panel_prep_q4_0;
    k->panel_prep[GGML_TYPE_Q4_K] = panel_prep_q8_K;
    k->panel_prep[GGML_TYPE_Q6_K] = panel_prep_q8_K;
    k->gemm16[GGML_TYPE_Q8_0] = gemm_q8_0;
    k->gemm16[GGML_TYPE_Q4_0] = gemm_q4_0;
    k->gemm16[GGML_TYPE_Q4_K] = gemm_q4_K;
    k->gemm16[GGML_TYPE_Q6_K] = gemm_q6_K;
}

/* AMX-INT8 in the CPU (CPUID.7.0:EDX bits 24 and 25) and granted by the OS:
 * Linux hands a process the 8 KB of tile state only when asked
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, feature 18). */
#ifndef ARCH_REQ_XCOMP_PERM /* <asm/prctl.h>, which not every system's headers have */
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define XFEATURE_XTILEDATA  18
#define CPUID7_EDX_AMX_TILE (1u << 24)
#define CPUID7_EDX_AMX_INT8 (1u << 25)

static int amx_usable(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & CPUID7_EDX_AMX_TILE) ||
        !(d & CPUID7_EDX_AMX_INT8))
        return 0;
#if defined(__linux__)
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

int quant_kernels_init_amx(struct quant_kernels *k)
{
    if (!amx_usable())
        return KITH_EUNSUPPORTED;
    quant_kernels_init_avx512(k);
    k->name = "amx";
    k->gemm16[GGML_TYPE_Q8_0] = gemm_q8_0_amx;
    k->gemm16[GGML_TYPE_Q4_0] = gemm_q4_0_amx;
    k->gemm_rows[GGML_TYPE_Q8_0] = 16;
    k->gemm_rows[GGML_TYPE_Q4_0] = 16;
    k->gemm16[GGML_TYPE_Q4_K] = gemm_q4_K_amx;
    k->gemm16[GGML_TYPE_Q6_K] = gemm_q6_K_amx;
    k->gemm_rows[GGML_TYPE_Q4_K] = 16;
    k->gemm_rows[GGML_TYPE_Q6_K] = 16;
    return 0;
}

#else
void quant_kernels_init_avx512(struct quant_kernels *k)
{
    memset(k, 0, sizeof *k);
    k->name = "avx512";
}

int quant_kernels_init_amx(struct quant_kernels *k)
{
    (void)k;
    return KITH_EUNSUPPORTED;
}
#endif

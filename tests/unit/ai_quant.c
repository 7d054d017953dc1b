/*
 * Kernel tests: f16/bf16 conversion, quantize/dequantize round trips within
 * each format's error, dot products consistent with dequantize-then-dot, and
 * every SIMD level this CPU runs agreeing with the scalar oracle (activation
 * roundings byte for byte, dot products within float tolerance).
 */
#include <math.h>

#include "ai/quant.h"
#include "kith/kith.h"
#include "tt.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void) /* uniform [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / (float)(1u << 23) - 1.0f;
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * frand();
    /* a few outliers, as real activations have */
    x[n / 3] *= 8;
    x[n / 2] = -x[n / 2] * 5;
}

#define N 1024

TT_TEST(f16_conversion)
{
    /* every f16 value survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* nan payloads */
        TT_EQ(quant_f32_to_f16(quant_f16_to_f32((uint16_t)h)), h);
    }
    /* rounding to nearest even, overflow, subnormals */
    TT_EQ(quant_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even */
    TT_EQ(quant_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02); /* tie -> even */
    TT_EQ(quant_f32_to_f16(65520.f), 0x7c00);
    TT_EQ(quant_f32_to_f16(65519.f), 0x7bff);
    TT_EQ(quant_f32_to_f16(5.9604645e-08f), 0x0001);
    TT_EQ(quant_f32_to_f16(2.0e-8f), 0x0000);
    TT_EQ(quant_f32_to_f16(-0.0f), 0x8000);
    TT_EQ(quant_f32_to_bf16(1.0f), 0x3f80);
    TT_NEAR(quant_bf16_to_f32(quant_f32_to_bf16(3.14159f)), 3.14159, 0.02);
    /* the F16C converter is compared with this one in simd_matches_scalar */
}

struct fmt {
    uint32_t type;
    double max_rel_rmse; /* rmse of the round trip / rms of the input */
};

static const struct fmt fmts[] = {
    {GGML_TYPE_F32, 0},      {GGML_TYPE_F16, 1e-3},   {GGML_TYPE_BF16, 8e-3},
    {GGML_TYPE_Q8_0, 0.01},  {GGML_TYPE_Q4_0, 0.12},  {GGML_TYPE_Q4_K, 0.09},
    {GGML_TYPE_Q5_K, 0.045}, {GGML_TYPE_Q6_K, 0.025}, {GGML_TYPE_Q8_K, 0.02},
};

TT_TEST(round_trips)
{
    static float x[N], y[N];
    static uint8_t q[N * 4];
    fill(x, N, 1.0f);
    double rms = 0;
    for (int i = 0; i < N; i++)
        rms += (double)x[i] * x[i];
    rms = sqrt(rms / N);
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        quant_ref_quantize_row(fmts[f].type, x, q, N);
        quant_ref_dequant_row(fmts[f].type, q, y, N);
        double se = 0;
        for (int i = 0; i < N; i++)
            se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        double rel = sqrt(se / N) / rms;
        if (rel > fmts[f].max_rel_rmse)
            TT_FAIL_("%s: relative rmse %g over %g", gguf_ggml_type_name(fmts[f].type), rel,
                     fmts[f].max_rel_rmse);
    }
    /* all zeros stay zero */
    static float z[N];
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        quant_ref_quantize_row(fmts[f].type, z, q, N);
        quant_ref_dequant_row(fmts[f].type, q, y, N);
        for (int i = 0; i < N; i++)
            TT_NEAR(y[i], 0, 0);
    }
}

static const uint32_t weight_types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                        GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q5_0,
                                        GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};

/* Weights of @type from @x; Q5_0 (no quantizer) from random bytes. */
static void make_weights(uint32_t type, const float *x, uint8_t *w)
{
    if (type == GGML_TYPE_Q5_0) {
        blk_q5_0 *b = (blk_q5_0 *)w;
        for (int i = 0; i < N / QK; i++) {
            b[i].d = quant_f32_to_f16(0.01f + 0.05f * fabsf(frand()));
            for (int j = 0; j < 4; j++)
                b[i].qh[j] = (uint8_t)(rng >> (8 * j));
            for (int j = 0; j < QK / 2; j++) {
                frand();
                b[i].qs[j] = (uint8_t)rng;
            }
        }
    } else {
        quant_ref_quantize_row(type, x, w, N);
    }
}

TT_TEST(dot_matches_dequantized)
{
    static float x[N], a[N], wd[N], ad[N];
    static uint8_t w[N * 4], qa[N * 4];
    fill(x, N, 1.0f);
    fill(a, N, 2.0f);
    for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
        uint32_t type = weight_types[t], dt = quant_dot_type(type);
        make_weights(type, x, w);
        quant_kernels_named("scalar")->act[dt](a, qa, N);
        quant_ref_dequant_row(type, w, wd, N);
        quant_ref_dequant_row(dt, qa, ad, N);
        double ref = 0, mag = 0;
        for (int i = 0; i < N; i++) {
            ref += (double)wd[i] * ad[i];
            mag += fabs((double)wd[i] * ad[i]);
        }
        double got = quant_ref_dot(type, N, w, qa);
        if (fabs(got - ref) > 1e-5 * mag + 1e-6)
            TT_FAIL_("%s: dot %g, dequantized dot %g", gguf_ggml_type_name(type), got, ref);
    }
}

TT_TEST(simd_matches_scalar)
{
    static float x[N], a[N];
    static uint8_t w[N * 4], qa_ref[N * 4], qa[N * 4];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const struct quant_kernels *ref = quant_kernels_named("scalar");
    int tested = 0;
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        if (!k)
            continue;
        tested++;
        for (int rep = 0; rep < 20; rep++) {
            fill(x, N, 1.0f);
            fill(a, N, rep % 2 ? 0.01f : 3.0f);
            for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
                uint32_t type = weight_types[t], dt = quant_dot_type(type);
                make_weights(type, x, w);
                size_t ab = quant_row_bytes(dt, N);
                ref->act[dt](a, qa_ref, N);
                k->act[dt](a, qa, N);
                if (memcmp(qa, qa_ref, ab))
                    TT_FAIL_("%s: activation rounding to %s differs from scalar", k->name,
                             gguf_ggml_type_name(dt));
                double r = ref->dot[type](N, w, qa), s = k->dot[type](N, w, qa);
                double mag = 0;
                static float wd[N], ad[N];
                quant_ref_dequant_row(type, w, wd, N);
                quant_ref_dequant_row(dt, qa, ad, N);
                for (int i = 0; i < N; i++)
                    mag += fabs((double)wd[i] * ad[i]);
                if (fabs(r - s) > 1e-5 * mag + 1e-7)
                    TT_FAIL_("%s %s: %.9g vs scalar %.9g", k->name, gguf_ggml_type_name(type), s,
                             r);
                if (k->dot4[type]) {
                    float o[4];
                    k->dot4[type](N, w, qa, 0, 4, o);
                    for (int i = 0; i < 4; i++)
                        if (fabs(o[i] - s) > 1e-5 * mag + 1e-7)
                            TT_FAIL_("%s %s dot4: %.9g vs %.9g", k->name, gguf_ggml_type_name(type),
                                     o[i], s);
                }
            }
        }
    }
    printf("     (%d SIMD levels tested; best: %s)\n", tested, quant_kernels()->name);
}

/* Tile kernels (4 weight rows x 1..4 activation rows) against the scalar
 * dot of each pair, for every level and type that has them. */
TT_TEST(tiles_match_scalar)
{
    enum { R = 4, C = 4 };
    static float x[N], a[N];
    static uint8_t w[R][N * 4], qa[C][N * 4], ta[C][QUANT_TILE_BYTES(N)];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const struct quant_kernels *ref = quant_kernels_named("scalar");
    int tested = 0;
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        if (!k)
            continue;
        for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
            uint32_t type = weight_types[t], dt = quant_dot_type(type);
            if (!k->tile4[type])
                continue;
            tested++;
            size_t wb = quant_row_bytes(type, N);
            for (int rep = 0; rep < 10; rep++) {
                uint8_t *wrows = malloc(wb * R);
                TT_ASSERT(wrows != NULL);
                for (int r = 0; r < R; r++) {
                    fill(x, N, 1.0f);
                    make_weights(type, x, w[r]);
                    memcpy(wrows + (size_t)r * wb, w[r], wb);
                }
                for (int c = 0; c < C; c++) {
                    fill(a, N, (rep + c) % 2 ? 0.01f : 3.0f);
                    ref->act[dt](a, qa[c], N);
                    if (k->tile_prep[type])
                        k->tile_prep[type](qa[c], ta[c], N);
                }
                for (int nc = 1; nc <= C; nc++) {
                    float y[C][R];
                    if (k->tile_prep[type])
                        k->tile4[type](N, wrows, wb, ta, sizeof ta[0], nc, &y[0][0], R);
                    else
                        k->tile4[type](N, wrows, wb, qa, sizeof qa[0], nc, &y[0][0], R);
                    for (int c = 0; c < nc; c++)
                        for (int r = 0; r < R; r++) {
                            static float wd[N], ad[N];
                            double mag = 0, s = ref->dot[type](N, w[r], qa[c]);
                            quant_ref_dequant_row(type, w[r], wd, N);
                            quant_ref_dequant_row(dt, qa[c], ad, N);
                            for (int i = 0; i < N; i++)
                                mag += fabs((double)wd[i] * ad[i]);
                            if (fabs(y[c][r] - s) > 1e-5 * mag + 1e-6)
                                TT_FAIL_("%s %s tile nc=%d (%d,%d): %.9g vs scalar %.9g", k->name,
                                         gguf_ggml_type_name(type), nc, r, c, y[c][r], s);
                        }
                }
                free(wrows);
            }
        }
    }
    printf("     (%d tile kernels tested)\n", tested);
}

/* Panel kernels (1..4 weight rows x 1..16 tokens) against the scalar dot
 * of each pair, for every level and type that has them. */
TT_TEST(panels_match_scalar)
{
    enum { R = 4, C = 16 };
    static float x[N], a[N];
    static uint8_t w[R][N * 4], qa[C][N * 4], pa[QUANT_PANEL_BYTES(N)];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const struct quant_kernels *ref = quant_kernels_named("scalar");
    int tested = 0;
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        if (!k)
            continue;
        for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
            uint32_t type = weight_types[t], dt = quant_dot_type(type);
            if (!k->gemm16[type])
                continue;
            tested++;
            size_t wb = quant_row_bytes(type, N);
            uint8_t *wrows = malloc(wb * R);
            TT_ASSERT(wrows != NULL);
            for (int rep = 0; rep < 6; rep++) {
                for (int r = 0; r < R; r++) {
                    fill(x, N, 1.0f);
                    make_weights(type, x, w[r]);
                    memcpy(wrows + (size_t)r * wb, w[r], wb);
                }
                for (int c = 0; c < C; c++) {
                    fill(a, N, (rep + c) % 3 ? 0.01f : 3.0f);
                    ref->act[dt](a, qa[c], N);
                }
                int nts[] = {16, 1, 7, 13};
                for (int nr = 1; nr <= R; nr++) {
                    int nt = nts[(rep + nr) % 4];
                    float y[C][R];
                    memset(y, 0, sizeof y);
                    k->panel_prep[type](qa, sizeof qa[0], nt, pa, N);
                    k->gemm16[type](N, wrows, wb, nr, pa, nt, &y[0][0], R);
                    for (int c = 0; c < nt; c++)
                        for (int r = 0; r < nr; r++) {
                            static float wd[N], ad[N];
                            double mag = 0, s = ref->dot[type](N, w[r], qa[c]);
                            quant_ref_dequant_row(type, w[r], wd, N);
                            quant_ref_dequant_row(dt, qa[c], ad, N);
                            for (int i = 0; i < N; i++)
                                mag += fabs((double)wd[i] * ad[i]);
                            if (fabs(y[c][r] - s) > 1e-5 * mag + 1e-6)
                                TT_FAIL_("%s %s panel nr=%d nt=%d (%d,%d): %.9g vs scalar %.9g",
                                         k->name, gguf_ggml_type_name(type), nr, nt, r, c, y[c][r],
                                         s);
                        }
                }
            }
            free(wrows);
        }
    }
    printf("     (%d panel kernels tested)\n", tested);
}

/* Q4_K and Q6_K: the panel kernel (batches of 16 or more tokens) and the
 * tile kernel (smaller batches, one token) do the same integer block sums
 * and the same float chain, so that batched and single-token logits agree
 * bit for bit. Weights from the quantizer and, for Q6_K, random bytes (every
 * 6-bit value and scale, -128 included). */
TT_TEST(k_panels_match_tiles_bits)
{
    enum { R = 4, C = 16 };
    static float x[N], a[N];
    static uint8_t wrows[R * N], qa[C][N * 4], pa[QUANT_PANEL_BYTES(N)];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const uint32_t types[] = {GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    const struct quant_kernels *ref = quant_kernels_named("scalar");
    int tested = 0;
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        if (!k)
            continue;
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            uint32_t type = types[t];
            if (!k->gemm16[type] || !k->tile4[type] || k->tile_prep[type])
                continue;
            tested++;
            size_t wb = quant_row_bytes(type, N);
            for (int rep = 0; rep < 4; rep++) {
                for (int r = 0; r < R; r++) {
                    uint8_t *wr = wrows + (size_t)r * wb;
                    if (type == GGML_TYPE_Q6_K && rep % 2) {
                        for (size_t i = 0; i < wb; i++) {
                            frand();
                            wr[i] = (uint8_t)rng;
                        }
                        for (int b = 0; b < N / QK_K; b++) {
                            blk_q6_K *blk = (blk_q6_K *)wr + b;
                            blk->d = quant_f32_to_f16(0.001f + 0.01f * fabsf(frand()));
                            if (b == 0)
                                blk->scales[3] = -128;
                        }
                    } else {
                        fill(x, N, 1.0f);
                        make_weights(type, x, wr);
                    }
                }
                for (int c = 0; c < C; c++) {
                    fill(a, N, (rep + c) % 3 ? 0.01f : 3.0f);
                    if (c == 5)
                        for (int i = 0; i < N; i++)
                            a[i] = i % 2 ? 1.0f : -1.0f; /* quants of +-127 */
                    ref->act[GGML_TYPE_Q8_K](a, qa[c], N);
                }
                int nt = rep < 2 ? 16 : 11;
                float yp[C][R], yt[C][R];
                memset(yp, 0, sizeof yp);
                memset(yt, 0, sizeof yt);
                k->panel_prep[type](qa, sizeof qa[0], nt, pa, N);
                k->gemm16[type](N, wrows, wb, R, pa, nt, &yp[0][0], R);
                /* panel with fewer rows: the same bits as with 4 */
                for (int nr = 1; nr < R; nr++) {
                    float y1[C][R];
                    k->gemm16[type](N, wrows, wb, nr, pa, nt, &y1[0][0], R);
                    for (int c = 0; c < nt; c++)
                        for (int r = 0; r < nr; r++)
                            if (memcmp(&y1[c][r], &yp[c][r], sizeof(float)))
                                TT_FAIL_("%s %s panel nr=%d (%d,%d): %.9g vs %.9g with nr=4",
                                         k->name, gguf_ggml_type_name(type), nr, r, c, y1[c][r],
                                         yp[c][r]);
                }
                /* tiles of 1..4 columns (tokens) */
                for (int c = 0; c < nt;) {
                    int nc = 1 + (c + rep) % 4;
                    if (nc > nt - c)
                        nc = nt - c;
                    k->tile4[type](N, wrows, wb, qa[c], sizeof qa[0], nc, &yt[c][0], R);
                    c += nc;
                }
                for (int c = 0; c < nt; c++)
                    for (int r = 0; r < R; r++) {
                        static float wd[N], ad[N];
                        double mag = 0, s = ref->dot[type](N, wrows + (size_t)r * wb, qa[c]);
                        quant_ref_dequant_row(type, wrows + (size_t)r * wb, wd, N);
                        quant_ref_dequant_row(GGML_TYPE_Q8_K, qa[c], ad, N);
                        for (int i = 0; i < N; i++)
                            mag += fabs((double)wd[i] * ad[i]);
                        if (fabs(yp[c][r] - s) > 1e-5 * mag + 1e-6)
                            TT_FAIL_("%s %s rep=%d (%d,%d): panel %.9g vs scalar %.9g", k->name,
                                     gguf_ggml_type_name(type), rep, r, c, yp[c][r], s);
                    }
                for (int c = 0; c < nt; c++)
                    for (int r = 0; r < R; r++)
                        if (memcmp(&yt[c][r], &yp[c][r], sizeof(float)))
                            TT_FAIL_("%s %s rep=%d (%d,%d): tile %.9g vs panel %.9g", k->name,
                                     gguf_ggml_type_name(type), rep, r, c, yt[c][r], yp[c][r]);
            }
        }
    }
    printf("     (%d K-quant panel/tile pairs tested)\n", tested);
}

/* Row lengths that are not a multiple of 16 (ffn_down of small models has
 * 172): the F32 tile's masked tail and dot4 against the scalar dot. */
TT_TEST(f32_odd_lengths)
{
    enum { R = 4, C = 4 };
    static float w[R][200], a[C][200];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const struct quant_kernels *ref = quant_kernels_named("scalar");
    const size_t lens[] = {1, 15, 16, 17, 63, 64, 100, 172, 200};
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        if (!k)
            continue;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li];
            for (int r = 0; r < R; r++)
                fill(w[r], 200, 1.0f);
            for (int c = 0; c < C; c++)
                fill(a[c], 200, 1.0f);
            for (int c = 0; c < C; c++)
                for (int r = 0; r < R; r++) {
                    double s = ref->dot[GGML_TYPE_F32](n, w[r], a[c]), mag = 0;
                    for (size_t i = 0; i < n; i++)
                        mag += fabs((double)w[r][i] * a[c][i]);
                    float y[C][R], o[C];
                    for (int nc = 1; nc <= C; nc++) {
                        if (!k->tile4[GGML_TYPE_F32])
                            break;
                        k->tile4[GGML_TYPE_F32](n, w, sizeof w[0], a, sizeof a[0], nc, &y[0][0], R);
                        if (c < nc && fabs(y[c][r] - s) > 1e-5 * mag + 1e-7)
                            TT_FAIL_("%s F32 tile n=%zu nc=%d (%d,%d): %.9g vs %.9g", k->name, n,
                                     nc, r, c, y[c][r], s);
                    }
                    if (k->dot4[GGML_TYPE_F32]) {
                        /* dot4 keeps dot[F32]'s order: the same bits */
                        k->dot4[GGML_TYPE_F32](n, w[r], a, sizeof a[0], C, o);
                        float d = k->dot[GGML_TYPE_F32](n, w[r], a[c]);
                        if (memcmp(&o[c], &d, sizeof d))
                            TT_FAIL_("%s F32 dot4 n=%zu: %.9g vs dot %.9g", k->name, n, o[c], d);
                    }
                }
        }
    }
}

/* The attention loop that att_small and att_wide replace (one F16 dot per
 * position, softmax, one axpy_f16 per position) on level @k, into @want. */
static void att_loop(const struct quant_kernels *k, size_t hd, const uint16_t *q16,
                     const uint16_t *kc, const uint16_t *vc, size_t stride, int n, float scale,
                     float *sc, float *want)
{
    float mx = -INFINITY;
    for (int p = 0; p < n; p++) {
        sc[p] = k->dot[GGML_TYPE_F16](hd, kc + (size_t)p * stride, q16) * scale;
        mx = sc[p] > mx ? sc[p] : mx;
    }
    double sum = 0;
    for (int p = 0; p < n; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = (float)(1.0 / sum);
    memset(want, 0, hd * sizeof *want);
    for (int p = 0; p < n; p++)
        k->axpy_f16(hd, sc[p] * inv, vc + (size_t)p * stride, want);
}

enum { ATT_MAXP = 130, ATT_STRIDE = 136 };
static uint16_t att_k[ATT_MAXP * ATT_STRIDE], att_v[ATT_MAXP * ATT_STRIDE], att_q[128];

static void att_fill(size_t hd)
{
    for (size_t i = 0; i < (size_t)ATT_MAXP * ATT_STRIDE; i++) {
        att_k[i] = quant_f32_to_f16(frand());
        att_v[i] = quant_f32_to_f16(frand());
    }
    for (size_t i = 0; i < hd; i++)
        att_q[i] = quant_f32_to_f16(2 * frand());
}

/* A fused attention kernel (att_small for heads of 8..32, att_wide for 64
 * and 128) against the loop it replaces, on every level that has it, over
 * 1 to ATT_MAXP positions, one case with two equal keys (a tie for the
 * maximum). att_wide must give the loop's bits with any compiler (no scalar
 * tails at its widths); att_small the same bits from gcc, while clang may
 * fuse axpy_f16's scalar tail into an FMA, so it is allowed a rounding. */
static void att_matches_loop(int wide)
{
    static float sc[ATT_MAXP], out[128], want[128];
    const char *levels[] = {"avx2", "avx512", "amx", "neon", "neon-dotprod"};
    const int npos[] = {1, 2, 15, 16, 17, 31, 100, ATT_MAXP};
    int tested = 0;
    for (size_t lv = 0; lv < sizeof levels / sizeof levels[0]; lv++) {
        const struct quant_kernels *k = quant_kernels_named(levels[lv]);
        quant_att_fn fn = !k ? NULL : wide ? k->att_wide : k->att_small;
        if (!fn)
            continue;
        tested++;
        for (size_t hd = wide ? 64 : 8; hd <= (wide ? 128u : 32u); hd += wide ? 64 : 8) {
            for (size_t pi = 0; pi < sizeof npos / sizeof npos[0]; pi++) {
                int n = npos[pi];
                att_fill(hd);
                if (pi == 3) /* two equal keys: a tie for the maximum */
                    memcpy(att_k + ATT_STRIDE, att_k, hd * sizeof *att_k);
                float scale = 1.0f / sqrtf((float)hd);
                att_loop(k, hd, att_q, att_k, att_v, ATT_STRIDE, n, scale, sc, want);
                fn(hd, att_q, att_k, att_v, ATT_STRIDE, n, scale, sc, out);
                for (size_t i = 0; i < hd; i++)
                    if (wide ? memcmp(&out[i], &want[i], sizeof out[i]) != 0
                             : fabsf(out[i] - want[i]) > 1e-6f * (1 + fabsf(want[i])))
                        TT_FAIL_("%s hd=%zu n=%d [%zu]: %.9g vs %.9g", k->name, hd, n, i, out[i],
                                 want[i]);
            }
        }
    }
    printf("     (%d levels with a %s-head attention kernel)\n", tested, wide ? "wide" : "small");
}

TT_TEST(att_small_matches_loop)
{
    att_matches_loop(0);
}

TT_TEST(att_wide_matches_loop_bits)
{
    att_matches_loop(1);
}

/* AMX panel kernels (16 weight rows a call through the tile unit) against
 * the avx512 ones they stand in for, 4 rows at a time: the same integer
 * block sums and float chain, so the same bits. Quantizer weights and, in
 * one round, random quant bytes (-128 and the Q4_0 extremes included);
 * fewer than 16 rows take the VNNI kernel inside the AMX one. */
TT_TEST(amx_panels_match_avx512_bits)
{
    enum { R = 16, C = 32 };
    static float x[N], a[N];
    static uint8_t qa[C][N * 4], pa[2][QUANT_PANEL_BYTES(N)];
    const struct quant_kernels *k = quant_kernels_named("amx"), *v = quant_kernels_named("avx512");
    const uint32_t types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0};
    if (!k) {
        printf("     (no AMX on this CPU)\n");
        return;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint32_t type = types[t], dt = quant_dot_type(type);
        TT_ASSERT(k->gemm16[type] && k->gemm_rows[type] == R);
        size_t wb = quant_row_bytes(type, N), bs = type == GGML_TYPE_Q4_0 ? 18 : 34;
        uint8_t *w = malloc(wb * R);
        TT_ASSERT(w != NULL);
        for (int rep = 0; rep < 4; rep++) {
            for (int r = 0; r < R; r++) {
                fill(x, N, r % 5 ? 1.0f : 40.0f);
                quant_quantize_row(type, x, w + (size_t)r * wb, N);
                for (size_t b = 0; rep == 3 && b < N / 32; b++)
                    for (size_t i = 2; i < bs; i++)
                        w[(size_t)r * wb + b * bs + i] = (uint8_t)(int)(frand() * 256);
            }
            for (int c = 0; c < C; c++) {
                fill(a, N, (rep + c) % 3 ? 0.01f : 3.0f);
                v->act[dt](a, qa[c], N);
            }
            /* all the tokens in one call: 2 panels, or a part of one */
            int nts[] = {32, 1, 7, 29}, nrs[] = {16, 16, 5, 16};
            int nt = nts[rep], nr = nrs[rep];
            float y[C][R], want[C][R];
            memset(y, 0, sizeof y);
            memset(want, 0, sizeof want);
            for (int c = 0; c < nt; c += 16)
                k->panel_prep[type](qa[c], sizeof qa[0], nt - c < 16 ? nt - c : 16, pa[c / 16], N);
            k->gemm16[type](N, w, wb, nr, pa, nt, &y[0][0], R);
            for (int c = 0; c < nt; c += 16) {
                int nc = nt - c < 16 ? nt - c : 16;
                v->panel_prep[type](qa[c], sizeof qa[0], nc, pa[c / 16], N);
                for (int r = 0; r < nr; r += 4)
                    v->gemm16[type](N, w + (size_t)r * wb, wb, nr - r < 4 ? nr - r : 4, pa[c / 16],
                                    nc, &want[c][r], R);
            }
            for (int c = 0; c < C; c++)
                for (int r = 0; r < R; r++)
                    if (memcmp(&y[c][r], &want[c][r], sizeof(float)))
                        TT_FAIL_("amx %s nr=%d nt=%d (%d,%d): %.9g vs avx512 %.9g",
                                 gguf_ggml_type_name(type), nr, nt, r, c, y[c][r], want[c][r]);
        }
        free(w);
    }
}

/* The AMX Q4_K/Q6_K kernels against the VNNI panels, bit for bit: random
 * quant and scale bytes (so the extreme scales: 63 for Q4_K, -128 and 127
 * for Q6_K), activation quants of +-127, 2 panels and parts of one, an odd
 * number of blocks (a group of the unpacking cut short) and fewer than 16
 * rows (the VNNI kernel inside the AMX one). */
TT_TEST(amx_k_panels_match_avx512_bits)
{
    enum { R = 16, C = 32 };
    static float x[N], a[N];
    static uint8_t qa[C][N * 4], pa[2 * QUANT_PANEL_BYTES(N)];
    const struct quant_kernels *k = quant_kernels_named("amx"), *v = quant_kernels_named("avx512");
    const uint32_t types[] = {GGML_TYPE_Q4_K, GGML_TYPE_Q6_K};
    if (!k) {
        printf("     (no AMX on this CPU)\n");
        return;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint32_t type = types[t];
        TT_ASSERT(k->gemm16[type] && k->gemm_rows[type] == R);
        size_t wb = quant_row_bytes(type, N);
        uint8_t *w = malloc(wb * R);
        TT_ASSERT(w != NULL);
        for (int rep = 0; rep < 6; rep++) {
            /* n: 4 blocks, or 3 (rows still N apart) */
            size_t n = rep % 3 == 2 ? N - QK_K : N, pb = QUANT_PANEL_BYTES(n);
            for (int r = 0; r < R; r++) {
                uint8_t *wr = w + (size_t)r * wb;
                if (rep >= 3) {
                    for (size_t i = 0; i < wb; i++)
                        wr[i] = (uint8_t)(frand() * 128 + 128);
                    for (size_t b = 0; b < N / QK_K; b++) {
                        uint16_t d = quant_f32_to_f16(0.001f + 0.01f * fabsf(frand()));
                        if (type == GGML_TYPE_Q6_K) {
                            blk_q6_K *blk = (blk_q6_K *)wr + b;
                            blk->d = d;
                            blk->scales[r % 16] = r % 2 ? -128 : 127;
                        } else {
                            blk_q4_K *blk = (blk_q4_K *)wr + b;
                            blk->d = d;
                            blk->dmin = quant_f32_to_f16(0.001f + 0.01f * fabsf(frand()));
                            if (r % 3 == 0)
                                memset(blk->scales, 0xFF, sizeof blk->scales); /* all 63 */
                        }
                    }
                } else {
                    fill(x, N, r % 5 ? 1.0f : 40.0f);
                    make_weights(type, x, wr);
                }
            }
            for (int c = 0; c < C; c++) {
                fill(a, N, (rep + c) % 3 ? 0.01f : 3.0f);
                if (c % 7 == 5)
                    for (int i = 0; i < N; i++)
                        a[i] = i % 2 ? 1.0f : -1.0f; /* quants of +-127 */
                v->act[GGML_TYPE_Q8_K](a, qa[c], N);
            }
            int nts[] = {32, 1, 7, 29, 32, 16}, nrs[] = {16, 16, 5, 16, 16, 16};
            int nt = nts[rep], nr = nrs[rep];
            float y[C][R], want[C][R];
            memset(y, 0, sizeof y);
            memset(want, 0, sizeof want);
            for (int c = 0; c < nt; c += 16)
                k->panel_prep[type](qa[c], sizeof qa[0], nt - c < 16 ? nt - c : 16,
                                    pa + (c / 16) * pb, n);
            k->gemm16[type](n, w, wb, nr, pa, nt, &y[0][0], R);
            for (int c = 0; c < nt; c += 16) {
                int nc = nt - c < 16 ? nt - c : 16;
                v->panel_prep[type](qa[c], sizeof qa[0], nc, pa + (c / 16) * pb, n);
                for (int r = 0; r < nr; r += 4)
                    v->gemm16[type](n, w + (size_t)r * wb, wb, nr - r < 4 ? nr - r : 4,
                                    pa + (c / 16) * pb, nc, &want[c][r], R);
            }
            for (int c = 0; c < C; c++)
                for (int r = 0; r < R; r++)
                    if (memcmp(&y[c][r], &want[c][r], sizeof(float)))
                        TT_FAIL_("amx %s nr=%d nt=%d n=%zu (%d,%d): %.9g vs avx512 %.9g",
                                 gguf_ggml_type_name(type), nr, nt, n, r, c, y[c][r], want[c][r]);
        }
        free(w);
    }
}

TT_MAIN(TT_CASE(f16_conversion), TT_CASE(round_trips), TT_CASE(dot_matches_dequantized),
        TT_CASE(simd_matches_scalar), TT_CASE(tiles_match_scalar), TT_CASE(panels_match_scalar),
        TT_CASE(k_panels_match_tiles_bits), TT_CASE(f32_odd_lengths),
        TT_CASE(att_small_matches_loop), TT_CASE(att_wide_matches_loop_bits),
        TT_CASE(amx_panels_match_avx512_bits), TT_CASE(amx_k_panels_match_avx512_bits))

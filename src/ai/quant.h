/*
 * quant.h: tensor element formats (ggml's block layouts, bit for bit) and the
 * kernels over them: dequantize a row, quantize a row, and the dot product of
 * a weight row with an activation row.
 *
 * Activations are converted once per matmul into the weight type's "dot type"
 * (as ggml does): F32 weights take F32, F16 take F16, BF16 take BF16, the
 * 32-blocks Q8_0/Q4_0/Q5_0 take Q8_0 and the K-quants take Q8_K. Rounding the
 * activations to 8 bits this way is what llama.cpp does on the CPU, so the
 * engine reproduces its outputs (and q4_0 drifts the same way it does).
 *
 * quant_ref.c is the scalar oracle; arch/ holds AVX2 and AVX-512 versions
 * (x86-64) and NEON ones (AArch64) that quant_kernels() picks once by CPU
 * feature.
 */
#ifndef KITH_AI_QUANT_H
#define KITH_AI_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ai/gguf.h"

#define QK           32  /* elements per block of Q8_0/Q4_0/Q5_0 */
#define QK_K         256 /* elements per super-block of the K-quants */
#define K_SCALE_SIZE 12

/* ggml block layouts; the static asserts in quant_ref.c pin their sizes. */
typedef struct {
    uint16_t d;    /* f16 scale */
    int8_t qs[QK]; /* x = d * q */
} blk_q8_0;        /* 34 bytes */

typedef struct {
    uint16_t d;
    uint8_t qs[QK / 2]; /* low nibbles: elements 0..15, high: 16..31; x = d * (q - 8) */
} blk_q4_0;             /* 18 bytes */

typedef struct {
    uint16_t d;
    uint8_t qh[4];      /* 5th bit of each element */
    uint8_t qs[QK / 2]; /* as Q4_0; x = d * (q - 16) */
} blk_q5_0;             /* 22 bytes */

typedef struct {
    uint16_t d;                   /* super-block scale for the 6-bit scales */
    uint16_t dmin;                /* super-block scale for the 6-bit mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 (scale, min) pairs, 6 bits each */
    uint8_t qs[QK_K / 2];         /* 4-bit quants; x = d*sc*q - dmin*m */
} blk_q4_K;                       /* 144 bytes */

typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8]; /* 5th bits */
    uint8_t qs[QK_K / 2];
} blk_q5_K; /* 176 bytes */

typedef struct {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* 16 signed 8-bit scales */
    uint16_t d;
} blk_q6_K; /* 210 bytes; x = d * sc * (q - 32) */

typedef struct {
    float d; /* f32 scale (not f16) */
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of each 16 quants, for the K-quant mins */
} blk_q8_K;                   /* 292 bytes; activations only */

/* ---- f16 / bf16 ---- */

static inline float quant_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        exp = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Round to nearest even, as the F16C instruction does. */
static inline uint16_t quant_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    if (ax >= 0x7f800000) /* inf, nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000 ? 0x200 : 0));
    if (ax >= 0x477ff000) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000) { /* below 2^-14: f16 subnormal or zero */
        uint32_t e = ax >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return (uint16_t)sign;
        uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax & 0x7fffff) >> 13);
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++; /* a carry into the exponent is the right answer */
    return (uint16_t)(sign | h);
}

static inline float quant_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t quant_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) /* nan: keep it quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

/* ---- type traits ---- */

/* 1 if the engine can compute with weights of @type. */
int quant_supported(uint32_t type);
/* Elements per block (1 for F32/F16/BF16) and bytes per block; 0 if unknown. */
size_t quant_blck(uint32_t type);
size_t quant_type_size(uint32_t type);
/* Bytes of @n elements of @type; @n must be a multiple of the block. */
size_t quant_row_bytes(uint32_t type, size_t n);
/* The activation format that weights of @type are dotted with. */
uint32_t quant_dot_type(uint32_t type);
/* 1 if @type can be produced by quant_quantize_row. */
int quant_can_quantize(uint32_t type);

/* ---- scalar oracle (quant_ref.c) ---- */

/* @n elements of @type at @src -> @dst floats. */
void quant_ref_dequant_row(uint32_t type, const void *src, float *dst, size_t n);
/* @n floats -> @type at @dst (quant_row_bytes(type, n) bytes). For Q8_0 and
 * Q8_K this is the activation rounding the dot products expect. */
void quant_ref_quantize_row(uint32_t type, const float *src, void *dst, size_t n);
/* The Q8_0 activation rounding (differs from the Q8_0 weight rounding in
 * ties and in the inverse scale, as ggml's x86 code does). */
void quant_ref_act_q8_0(const float *src, void *dst, size_t n);
/* Dot product of @n elements: weight row @w of @type with an activation row
 * @a already in quant_dot_type(type). */
float quant_ref_dot(uint32_t type, size_t n, const void *w, const void *a);
void quant_ref_axpy_f16(size_t n, float s, const uint16_t *v, float *out);

/* ---- run-time selected kernels ---- */

typedef float (*quant_dot_fn)(size_t n, const void *w, const void *a);
/* Dots one weight row with @nr activation rows (a[r] = a + r*a_stride),
 * out[r]. Lets a kernel reuse each loaded weight block for several tokens. */
typedef void (*quant_dot_multi_fn)(size_t n, const void *w, const void *a, size_t a_stride, int nr,
                                   float *out);
typedef void (*quant_quantize_fn)(const float *src, void *dst, size_t n);
/* Tile kernels (matrix x matrix): the activation rows, already rounded to
 * the dot type (Q8_0), are rearranged once per matmul by tile_prep into a
 * per-kernel layout of QUANT_TILE_BYTES(n) bytes (the block pairs in the
 * order the kernel unpacks the weights, the scales as floats, the constant
 * corrections precomputed). tile4 then dots 4 weight rows (w + r*w_stride)
 * with @nc (1..4) prepared rows (a + c*a_stride): y[c*y_stride + r]. Each
 * weight block is loaded and unpacked once for all the columns. @n must be
 * a multiple of 64. */
#define QUANT_TILE_BYTES(n) ((n) / 64 * 192)
typedef void (*quant_tile_prep_fn)(const void *aq, void *dst, size_t n);
typedef void (*quant_tile_fn)(size_t n, const void *w, size_t w_stride, const void *a,
                              size_t a_stride, int nc, float *y, size_t y_stride);
/* out[i] += s * v[i] for @n f16 values (attention's weighted sum of V). */
typedef void (*quant_axpy_f16_fn)(size_t n, float s, const uint16_t *v, float *out);
/* Attention of one query head over @n_pos cached positions: sc[p] = (q16 .
 * k[p]) * scale, softmax over p, out[hd] = sum_p sc[p] v[p]. K and V rows
 * are f16, @stride elements apart (this head's @hd values first); @sc is
 * scratch of @n_pos floats. For small heads (hd 8..32, a multiple of 8), where
 * a kernel call per position and per V row would cost more than the
 * arithmetic; it does the same arithmetic as the dot[F16]/axpy_f16 loop it
 * replaces (the same bits when built with gcc). */
typedef void (*quant_att_fn)(size_t hd, const uint16_t *q16, const uint16_t *k, const uint16_t *v,
                             size_t stride, int n_pos, float scale, float *sc, float *out);

/* Panel kernels (matrix x matrix, prompt processing): up to 16 activation
 * rows (a + t*a_stride, t < @nt, in the dot type) are laid out once per
 * matmul by panel_prep into a panel of QUANT_PANEL_BYTES(n) bytes in which
 * each SIMD lane is one token; gemm16 then dots @nr (1..gemm_rows[type], 4
 * where that is 0) weight rows (w + r*w_stride) with the panel's @nt
 * tokens: y[t*y_stride + r]. Each
 * weight byte is read once per 16 tokens. @n: a multiple of the weight
 * type's block (32 or 256). Types with the same panel_prep (Q4_K and Q6_K)
 * share a panel, so their matrices can be one job. */
#define QUANT_PANEL_BYTES(n) ((n) / 32 * 640)
typedef void (*quant_panel_prep_fn)(const void *a, size_t a_stride, int nt, void *dst, size_t n);
typedef void (*quant_gemm_fn)(size_t n, const void *w, size_t w_stride, int nr, const void *panel,
                              int nt, float *y, size_t y_stride);

struct quant_kernels {
    const char *name; /* "scalar", "avx2", "avx512", "amx", "neon", "neon-dotprod" */
    quant_dot_fn dot[GGML_TYPE_COUNT];             /* by weight type; NULL = unsupported */
    quant_dot_multi_fn dot4[GGML_TYPE_COUNT];      /* up to 4 rows; NULL = use dot[] */
    quant_quantize_fn act[GGML_TYPE_COUNT];        /* activation rounding, by dot type */
    quant_tile_prep_fn tile_prep[GGML_TYPE_COUNT]; /* by weight type; NULL = no tiles */
    quant_tile_fn tile4[GGML_TYPE_COUNT];
    quant_axpy_f16_fn axpy_f16;
    quant_att_fn att_small; /* NULL: attention per position */
    quant_att_fn att_wide;  /* heads of 64 or 128, the loop's bits; NULL: per position */
    quant_panel_prep_fn panel_prep[GGML_TYPE_COUNT]; /* by weight type; NULL = no panels */
    quant_gemm_fn gemm16[GGML_TYPE_COUNT];
    /* Weight rows per gemm16 call, 0 = 4. AMX kernels take 16 (a tile's
     * height; fewer go through the VNNI kernel) and, so that a weight block
     * is unpacked once for all of them, any @nt: panel p (tokens 16p..) at
     * panel + p * QUANT_PANEL_BYTES(n). */
    uint8_t gemm_rows[GGML_TYPE_COUNT];
};

/* The best kernels for this CPU, chosen on the first call (thread-safe).
 * KITH_AI_KERNELS=scalar|avx2|avx512|amx|neon|neon-dotprod in the environment
 * forces a lower level (for tests and benchmarks). Static storage. */
const struct quant_kernels *quant_kernels(void);
/* Makes @name the level quant_kernels() returns from now on (tests and
 * benchmarks compare levels; not to be called while a model runs). 0, or
 * KITH_EUNSUPPORTED if this CPU cannot run it. */
int quant_kernels_set(const char *name);
/* A named level, or NULL if this CPU cannot run it. */
const struct quant_kernels *quant_kernels_named(const char *name);

/* Fill @k (entries left NULL fall back to the scalar ones). Defined per arch. */
void quant_kernels_init_ref(struct quant_kernels *k);
void quant_kernels_init_avx2(struct quant_kernels *k);
void quant_kernels_init_avx512(struct quant_kernels *k);
/* The avx512 level with the AMX-INT8 panel kernels (Q4_0, Q8_0, Q4_K,
 * Q6_K); 0, or KITH_EUNSUPPORTED (and @k untouched) if this CPU or OS
 * cannot run them. */
int quant_kernels_init_amx(struct quant_kernels *k);
/* @dotprod: use the Armv8.2 int8 dot product instruction (SDOT). */
void quant_kernels_init_neon(struct quant_kernels *k, int dotprod);

/* Dequantize with the selected kernels' speed, same results as the oracle. */
void quant_dequant_row(uint32_t type, const void *src, float *dst, size_t n);
/* Quantize a weight row (any quant_can_quantize type). */
void quant_quantize_row(uint32_t type, const float *src, void *dst, size_t n);

#endif

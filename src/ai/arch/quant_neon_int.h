/*
 * quant_neon_int.h: the integer dot products of quant_neon.c, included twice
 * there: with DP 0 for the "neon" level and with DP 1, under the dotprod
 * target, for "neon-dotprod". FN(name) gives each copy its own names.
 *
 * Block sums are exact in both copies: SDOT adds 4 products per lane, the
 * plain copy multiplies to 16 bits (exact for int8 x int8) and adds pairs
 * into 32. So the K-quants end in the oracle's own float expression on the
 * same integers, and the 32-blocks differ from it only in float order. The
 * 4-row bodies keep each row's order, so dot4 gives dot's bits.
 */

/* acc + the 16 products a[i] * b[i], in 4 lanes. */
INLINE int32x4_t FN(dot16)(int32x4_t acc, int8x16_t a, int8x16_t b)
{
#if DP && defined(__clang__)
    /* clang's arm_neon.h (before 16) declares vdotq_s32 only when the whole
     * build targets dotprod; the instruction itself is allowed here */
    __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
    return acc;
#elif DP
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* ---- 32-blocks: Q8_0, Q4_0, Q5_0 weights . Q8_0 activations ---- */

/* NR activation rows (a + r*stride) dotted with one weight row of @type
 * (blocks of @bsz bytes): the even blocks into acc0, the odd into acc1. */
INLINE void FN(b32_body)(uint32_t type, size_t bsz, size_t n, const uint8_t *w, const uint8_t *a,
                         size_t stride, int NR, float *out)
{
    size_t nb = n / QK;
    float32x4_t acc[4][2];
    for (int r = 0; r < NR; r++)
        acc[r][0] = acc[r][1] = vdupq_n_f32(0);
    for (size_t i = 0; i < nb; i++) {
        const uint8_t *b = w + i * bsz;
        int8x16_t lo, hi;
        w32(type, b, &lo, &hi);
        uint16_t dw;
        memcpy(&dw, b, 2); /* d leads every 32-block */
        float d = f16(dw);
        for (int r = 0; r < NR; r++) {
            const blk_q8_0 *y = (const blk_q8_0 *)(a + (size_t)r * stride) + i;
            int32x4_t p = FN(dot16)(vdupq_n_s32(0), lo, vld1q_s8(y->qs));
            p = FN(dot16)(p, hi, vld1q_s8(y->qs + 16));
            acc[r][i & 1] = vfmaq_n_f32(acc[r][i & 1], vcvtq_f32_s32(p), d * f16(y->d));
        }
    }
    for (int r = 0; r < NR; r++)
        out[r] = vaddvq_f32(vaddq_f32(acc[r][0], acc[r][1]));
}

/* ---- K-quants . Q8_K ---- */

/* Q4_K (@q5 = 0) and Q5_K: per 64-element chunk c, the low nibbles (with qh
 * bit 2c) are sub-block 2c against a[64c..64c+32), the high ones (qh bit
 * 2c+1) sub-block 2c+1 against the next 32; the mins term from the bsums. */
INLINE void FN(k4_body)(int q5, size_t n, const uint8_t *w, const uint8_t *a, size_t stride, int NR,
                        float *out)
{
    float s[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n / QK_K; i++) {
        const uint8_t *qs, *scales, *qhp = NULL;
        uint16_t xd, xdmin;
        if (q5) {
            const blk_q5_K *x = (const blk_q5_K *)w + i;
            qs = x->qs;
            scales = x->scales;
            qhp = x->qh;
            xd = x->d;
            xdmin = x->dmin;
        } else {
            const blk_q4_K *x = (const blk_q4_K *)w + i;
            qs = x->qs;
            scales = x->scales;
            xd = x->d;
            xdmin = x->dmin;
        }
        uint8_t sc[8], mn[8];
        k4_scales(scales, sc, mn);
        int32x4_t acc[4];
        for (int r = 0; r < NR; r++)
            acc[r] = vdupq_n_s32(0);
        uint8x16_t qh0 = vdupq_n_u8(0), qh1 = qh0;
        if (q5) {
            qh0 = vld1q_u8(qhp);
            qh1 = vld1q_u8(qhp + 16);
        }
        for (int c = 0; c < 4; c++) {
            uint8x16_t b0 = vld1q_u8(qs + 32 * c), b1 = vld1q_u8(qs + 32 * c + 16);
            int8x16_t l0 = lo_nibbles(b0), l1 = lo_nibbles(b1);
            int8x16_t h0 = hi_nibbles(b0), h1 = hi_nibbles(b1);
            if (q5) {
                l0 = vorrq_s8(l0, bit5(qh0, 2 * c));
                l1 = vorrq_s8(l1, bit5(qh1, 2 * c));
                h0 = vorrq_s8(h0, bit5(qh0, 2 * c + 1));
                h1 = vorrq_s8(h1, bit5(qh1, 2 * c + 1));
            }
            for (int r = 0; r < NR; r++) {
                const int8_t *y = ((const blk_q8_K *)(a + (size_t)r * stride) + i)->qs + 64 * c;
                int32x4_t p0 = FN(dot16)(vdupq_n_s32(0), l0, vld1q_s8(y));
                p0 = FN(dot16)(p0, l1, vld1q_s8(y + 16));
                int32x4_t p1 = FN(dot16)(vdupq_n_s32(0), h0, vld1q_s8(y + 32));
                p1 = FN(dot16)(p1, h1, vld1q_s8(y + 48));
                acc[r] = vmlaq_n_s32(acc[r], p0, sc[2 * c]);
                acc[r] = vmlaq_n_s32(acc[r], p1, sc[2 * c + 1]);
            }
        }
        for (int r = 0; r < NR; r++) {
            const blk_q8_K *y = (const blk_q8_K *)(a + (size_t)r * stride) + i;
            int summ = 0;
            for (int j = 0; j < 8; j++)
                summ += mn[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
            int sumi = vaddvq_s32(acc[r]);
            s[r] += y->d * f16(xd) * sumi - y->d * f16(xdmin) * summ;
        }
    }
    for (int r = 0; r < NR; r++)
        out[r] = s[r];
}

/* Q6_K: per half of 128, the 6-bit values rebuilt 16 at a time (q - 32),
 * each 16 of them times its signed 8-bit scale. */
INLINE void FN(q6_K_body)(size_t n, const uint8_t *w, const uint8_t *a, size_t stride, int NR,
                          float *out)
{
    const blk_q6_K *x = (const blk_q6_K *)w;
    float s[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n / QK_K; i++) {
        int32x4_t acc[4];
        for (int r = 0; r < NR; r++)
            acc[r] = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            const int8_t *sc = x[i].scales + 8 * h;
            for (int half = 0; half < 2; half++) { /* elements l = 16*half .. +16 of each 32 */
                int8x16_t q[4];
                q6_K_unpack(x[i].ql + 64 * h + 16 * half, x[i].qh + 32 * h + 16 * half, q);
                for (int r = 0; r < NR; r++) {
                    const int8_t *y =
                        ((const blk_q8_K *)(a + (size_t)r * stride) + i)->qs + 128 * h + 16 * half;
                    for (int k = 0; k < 4; k++) {
                        int32x4_t p = FN(dot16)(vdupq_n_s32(0), q[k], vld1q_s8(y + 32 * k));
                        acc[r] = vmlaq_n_s32(acc[r], p, sc[2 * k + half]);
                    }
                }
            }
        }
        for (int r = 0; r < NR; r++) {
            const blk_q8_K *y = (const blk_q8_K *)(a + (size_t)r * stride) + i;
            s[r] += f16(x[i].d) * y->d * vaddvq_s32(acc[r]);
        }
    }
    for (int r = 0; r < NR; r++)
        out[r] = s[r];
}

/* dot_<t> and dot4_<t> (the latter row by row when nr < 4) of this copy */
#define INT_KERNELS(t, CALL)                                                                       \
    static float FN(dot_##t)(size_t n, const void *w, const void *a)                               \
    {                                                                                              \
        float o;                                                                                   \
        CALL(n, (const uint8_t *)w, (const uint8_t *)a, 0, 1, &o);                                 \
        return o;                                                                                  \
    }                                                                                              \
    static void FN(dot4_##t)(size_t n, const void *w, const void *a, size_t stride, int nr,        \
                             float *out)                                                           \
    {                                                                                              \
        if (nr == 4) {                                                                             \
            CALL(n, (const uint8_t *)w, (const uint8_t *)a, stride, 4, out);                       \
            return;                                                                                \
        }                                                                                          \
        for (int r = 0; r < nr; r++)                                                               \
            CALL(n, (const uint8_t *)w, (const uint8_t *)a + (size_t)r * stride, 0, 1, out + r);   \
    }
#define CALL_Q8_0(...) FN(b32_body)(GGML_TYPE_Q8_0, sizeof(blk_q8_0), __VA_ARGS__)
#define CALL_Q4_0(...) FN(b32_body)(GGML_TYPE_Q4_0, sizeof(blk_q4_0), __VA_ARGS__)
#define CALL_Q5_0(...) FN(b32_body)(GGML_TYPE_Q5_0, sizeof(blk_q5_0), __VA_ARGS__)
#define CALL_Q4_K(...) FN(k4_body)(0, __VA_ARGS__)
#define CALL_Q5_K(...) FN(k4_body)(1, __VA_ARGS__)
#define CALL_Q6_K(...) FN(q6_K_body)(__VA_ARGS__)
INT_KERNELS(Q8_0, CALL_Q8_0)
INT_KERNELS(Q4_0, CALL_Q4_0)
INT_KERNELS(Q5_0, CALL_Q5_0)
INT_KERNELS(Q4_K, CALL_Q4_K)
INT_KERNELS(Q5_K, CALL_Q5_K)
INT_KERNELS(Q6_K, CALL_Q6_K)
#undef INT_KERNELS
#undef CALL_Q8_0
#undef CALL_Q4_0
#undef CALL_Q5_0
#undef CALL_Q4_K
#undef CALL_Q5_K
#undef CALL_Q6_K

/* This copy's kernels into @k. */
static void FN(set_int)(struct quant_kernels *k)
{
#define SET(t)                                                                                     \
    k->dot[GGML_TYPE_##t] = FN(dot_##t);                                                           \
    k->dot4[GGML_TYPE_##t] = FN(dot4_##t);
    SET(Q8_0)
    SET(Q4_0)
    SET(Q5_0)
    SET(Q4_K)
    SET(Q5_K)
    SET(Q6_K)
#undef SET
}

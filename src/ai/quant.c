/*
 * quant.c: picks the kernel level once per process by CPU feature (ggml's
 * arch-fallback idea): on x86-64 AMX-INT8 (the avx512 level with tile
 * panel kernels) > AVX-512 (with VNNI) > AVX2+FMA+F16C > scalar, on AArch64
 * NEON with SDOT (dotprod) > NEON > scalar. Every entry a level leaves NULL
 * falls back to the scalar oracle, so a new format only needs quant_ref.c
 * to work everywhere.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ai/quant.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

static struct quant_kernels k_ref, k_avx2, k_avx512, k_amx, k_neon, k_neon_dp;
static int have_avx2, have_avx512, have_amx, have_neon, have_neon_dp;
static const struct quant_kernels *k_best;
static pthread_once_t k_once = PTHREAD_ONCE_INIT;

static void fill_from(struct quant_kernels *k, const struct quant_kernels *base)
{
    for (int t = 0; t < GGML_TYPE_COUNT; t++) {
        if (!k->dot[t])
            k->dot[t] = base->dot[t];
        if (!k->act[t])
            k->act[t] = base->act[t];
    }
    if (!k->axpy_f16)
        k->axpy_f16 = base->axpy_f16;
}

/* The level called @name if this CPU runs it, else NULL; kernels_init has run. */
static const struct quant_kernels *level(const char *name)
{
    if (!strcmp(name, "scalar"))
        return &k_ref;
    if (!strcmp(name, "avx2"))
        return have_avx2 ? &k_avx2 : NULL;
    if (!strcmp(name, "avx512"))
        return have_avx512 ? &k_avx512 : NULL;
    if (!strcmp(name, "amx"))
        return have_amx ? &k_amx : NULL;
    if (!strcmp(name, "neon"))
        return have_neon ? &k_neon : NULL;
    if (!strcmp(name, "neon-dotprod"))
        return have_neon_dp ? &k_neon_dp : NULL;
    return NULL;
}

static void kernels_init(void)
{
    quant_kernels_init_ref(&k_ref);
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    have_avx512 = have_avx2 && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512vnni");
    if (have_avx2) {
        quant_kernels_init_avx2(&k_avx2);
        fill_from(&k_avx2, &k_ref);
    }
    if (have_avx512) {
        quant_kernels_init_avx512(&k_avx512);
        fill_from(&k_avx512, &k_avx2);
        have_amx = quant_kernels_init_amx(&k_amx) == 0;
        if (have_amx)
            fill_from(&k_amx, &k_avx2);
    }
#elif defined(__aarch64__)
    have_neon = 1; /* part of the AArch64 base */
#if defined(__linux__)
    have_neon_dp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    have_neon_dp = 1; /* every Apple silicon Mac (M1 on) has it */
#endif
    quant_kernels_init_neon(&k_neon, 0);
    fill_from(&k_neon, &k_ref);
    if (have_neon_dp) {
        quant_kernels_init_neon(&k_neon_dp, 1);
        fill_from(&k_neon_dp, &k_neon);
    }
#endif
    k_best = have_amx       ? &k_amx
             : have_avx512  ? &k_avx512
             : have_avx2    ? &k_avx2
             : have_neon_dp ? &k_neon_dp
             : have_neon    ? &k_neon
                            : &k_ref;
    const char *force = getenv("KITH_AI_KERNELS");
    if (force) {
        /* level(), not quant_kernels_named(): that would wait on the
         * pthread_once this function runs under, for ever */
        const struct quant_kernels *k = level(force);
        if (k)
            k_best = k;
    }
}

const struct quant_kernels *quant_kernels_named(const char *name)
{
    pthread_once(&k_once, kernels_init);
    return level(name);
}

int quant_kernels_set(const char *name)
{
    const struct quant_kernels *k = quant_kernels_named(name);
    if (!k)
        return KITH_EUNSUPPORTED;
    k_best = k;
    return 0;
}

const struct quant_kernels *quant_kernels(void)
{
    pthread_once(&k_once, kernels_init);
    return k_best;
}

void quant_dequant_row(uint32_t type, const void *src, float *dst, size_t n)
{
    quant_ref_dequant_row(type, src, dst, n);
}

void quant_quantize_row(uint32_t type, const float *src, void *dst, size_t n)
{
    const struct quant_kernels *k = quant_kernels();
    /* activation formats have a fast path; weight formats use the oracle */
    if ((type == GGML_TYPE_F16 || type == GGML_TYPE_BF16) && k->act[type])
        k->act[type](src, dst, n);
    else
        quant_ref_quantize_row(type, src, dst, n);
}

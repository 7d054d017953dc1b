/*
 * bench_membw: the read bandwidth of this machine with 1 and 2 threads, over
 * a buffer as large as a model, and the token rate that bandwidth allows.
 *
 *   bench_membw [BYTES | MODEL.gguf] [RUNS]
 *
 * One-token generation reads every weight once per token, so a model of B
 * bytes cannot generate faster than bandwidth / B tokens a second: the
 * "ceiling" issue 5's targets are stated against. A figure quoted for a
 * machine goes stale when the machine is shared (a VM's neighbours take
 * memory bandwidth too), so bench/ai_vs_llama.sh measures it in the same
 * rounds as the two engines. The loop is the best case for a stream: the
 * widest loads the CPU has (AVX-512 where present: scalar 64-bit loads
 * measured 20-30% lower here) into independent sums, a software prefetch
 * 8 KB ahead (as the kernels do), the buffer touched once beforehand so that
 * no page fault is timed; it reports the best of RUNS passes per thread count.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

struct part {
    const uint64_t *p;
    size_t n; /* 64-bit words, a multiple of 32 */
    uint64_t sum;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void read_part_avx512(struct part *w)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    const char *p = (const char *)w->p;
    for (size_t i = 0; i + 32 <= w->n; i += 32, p += 256) {
        for (int k = 0; k < 256; k += 64)
            _mm_prefetch(p + 8192 + k, _MM_HINT_T0);
        s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p));
        s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + 64));
        s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + 128));
        s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + 192));
    }
    w->sum = (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
}
#endif

static void *read_part(void *arg)
{
    struct part *w = arg;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        read_part_avx512(w);
        return NULL;
    }
#endif
    uint64_t s[8] = {0};
    for (size_t i = 0; i < w->n; i += 8) {
        __builtin_prefetch(w->p + i + 1024);
        for (int k = 0; k < 8; k++)
            s[k] += w->p[i + k];
    }
    w->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

/* One pass over the buffer split between @nth threads; seconds. */
static double pass(const uint64_t *buf, size_t words, int nth, uint64_t *sink)
{
    struct part parts[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
    pthread_t th[2];
    size_t per = words / (size_t)nth / 32 * 32;
    double t0 = now_s();
    for (int i = 0; i < nth; i++) {
        parts[i] = (struct part){buf + (size_t)i * per, per, 0};
        if (i > 0 && pthread_create(&th[i], NULL, read_part, &parts[i]))
            return -1;
    }
    read_part(&parts[0]);
    for (int i = 1; i < nth; i++)
        pthread_join(th[i], NULL);
    double t = now_s() - t0;
    for (int i = 0; i < nth; i++)
        *sink += parts[i].sum;
    return t;
}

int main(int argc, char **argv)
{
    size_t bytes = (size_t)128 << 20;
    int runs = 5;
    if (argc > 1) {
        struct stat st;
        char *end;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (*end == 0 && v >= 65536)
            bytes = (size_t)v;
        else if (stat(argv[1], &st) == 0 && st.st_size >= 65536)
            bytes = (size_t)st.st_size;
        else {
            fprintf(stderr,
                    "kith: error: %s: give a size of at least 64 KiB or a file that large\n",
                    argv[1]);
            return 2;
        }
    }
    if (argc > 2 && (runs = atoi(argv[2])) < 1) {
        fprintf(stderr, "kith: error: RUNS must be at least 1\n");
        return 2;
    }
    size_t words = bytes / 8 / 64 * 64;
    /* room past the end for the prefetches, which never fault but may cross a page */
    uint64_t *buf = aligned_alloc(64, words * 8 + 16384);
    if (!buf) {
        fprintf(stderr, "kith: error: out of memory for %zu bytes\n", bytes);
        return 1;
    }
    memset(buf, 1, words * 8 + 16384);
    uint64_t sink = 0;
    double best[3] = {0, 0, 0};
    for (int r = 0; r < runs; r++) {
        for (int nth = 1; nth <= 2; nth++) {
            double t = pass(buf, words, nth, &sink);
            if (t <= 0) {
                fprintf(stderr, "kith: error: cannot start a thread\n");
                free(buf);
                return 1;
            }
            double gbs = (double)(words / (size_t)nth / 32 * 32 * (size_t)nth) * 8 / t / 1e9;
            if (gbs > best[nth])
                best[nth] = gbs;
        }
    }
    printf("{\"bytes\":%zu,\"runs\":%d,\"read_gbs_1t\":%.2f,\"read_gbs_2t\":%.2f,"
           "\"ceiling_tps_1t\":%.1f,\"ceiling_tps_2t\":%.1f,\"sink\":%llu}\n",
           words * 8, runs, best[1], best[2], best[1] * 1e9 / (double)(words * 8),
           best[2] * 1e9 / (double)(words * 8), (unsigned long long)(sink & 1));
    free(buf);
    return 0;
}

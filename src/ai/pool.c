/*
 * pool.c: fork-join pthread pool (see pool.h). A job is published by bumping
 * a generation counter; workers notice it while spinning or are woken from
 * their condition variable. The last worker to finish wakes the caller the
 * same way. Spinning is bounded (SPIN_ITERS pause instructions, tens of
 * microseconds), which keeps decode latency low without burning a core that
 * another process needs.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "ai/pool.h"
#include "util/util_int.h"

#define SPIN_ITERS 2000

struct ai_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;     /* bumped once per job */
    atomic_int pending;  /* workers still running the current job */
    int sleeping;        /* workers waiting on @wake (under mu) */
    int waiting;         /* caller waiting on @done (under mu) */
    int stop;
    ai_task_fn fn;
    void *arg;
};

struct worker_arg {
    ai_pool *p;
    int ith;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *worker_main(void *varg)
{
    struct worker_arg *wa = varg;
    ai_pool *p = wa->p;
    int ith = wa->ith;
    kith_free(wa);
    unsigned seen = 0; /* the generation at creation: jobs published before this thread ran still count */
    for (;;) {
        unsigned g = seen;
        for (int i = 0; i < SPIN_ITERS; i++) {
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
            if (g != seen)
                break;
            cpu_relax();
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->sleeping++;
            while ((g = atomic_load(&p->gen)) == seen && !p->stop)
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleeping--;
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop && g == seen)
            return NULL;
        seen = g;
        if (p->stop)
            return NULL;
        p->fn(p->arg, ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->waiting)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int ai_pool_new(int n_threads, ai_pool **out)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    ai_pool *p = kith_calloc(1, sizeof *p);
    if (!p)
        return KITH_ENOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = kith_calloc((size_t)n_threads, sizeof *p->threads);
        if (!p->threads)
            goto fail;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = kith_malloc(sizeof *wa);
        if (!wa) {
            p->n = i;
            goto fail;
        }
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            kith_free(wa);
            p->n = i;
            ai_pool_free(p);
            return KITH_EIO;
        }
    }
    *out = p;
    return 0;
fail:
    ai_pool_free(p);
    return KITH_ENOMEM;
}

void ai_pool_free(ai_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    kith_free(p->threads);
    kith_free(p);
}

int ai_pool_threads(const ai_pool *p)
{
    return p ? p->n : 1;
}

void ai_pool_run(ai_pool *p, ai_task_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleeping)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n);

    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    p->waiting = 1;
    while (atomic_load(&p->pending) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
}

int ai_physical_cores(void)
{
    cpu_set_t set;
    int n_cpu = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n_cpu = CPU_COUNT(&set);
    if (n_cpu < 1)
        n_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_cpu < 1)
        return 1;
    /* Count each (package, core) pair once among the CPUs we may use. */
    int cores = 0;
    long seen[256][2];
    for (int c = 0; c < CPU_SETSIZE && cores < 256; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        char path[128];
        long core = -1, pkg = -1;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &core) != 1)
                core = -1;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                 c);
        f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%ld", &pkg) != 1)
                pkg = -1;
            fclose(f);
        }
        if (core < 0)
            return n_cpu; /* no topology: assume one thread per core */
        int dup = 0;
        for (int i = 0; i < cores; i++)
            if (seen[i][0] == pkg && seen[i][1] == core)
                dup = 1;
        if (!dup) {
            seen[cores][0] = pkg;
            seen[cores][1] = core;
            cores++;
        }
    }
    return cores > 0 ? cores : 1;
}

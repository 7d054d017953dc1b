/*
 * pool.h: a small fork-join thread pool for the kernels. ai_pool_run() runs
 * fn(arg, ith, nth) on every thread (the caller is thread 0) and returns when
 * all are done. Idle workers spin for a few microseconds (a decode step issues
 * hundreds of short jobs) and then sleep on a condition variable, so a
 * neighbour process that takes a core is never starved by spinning threads.
 * Thread rule: one caller at a time per pool.
 */
#ifndef KITH_AI_POOL_H
#define KITH_AI_POOL_H

typedef struct ai_pool ai_pool;
typedef void (*ai_task_fn)(void *arg, int ith, int nth);

/* New pool of @n_threads (>= 1, including the caller); *out freed with
 * ai_pool_free(). 0, KITH_ENOMEM or KITH_EIO (thread creation failed). */
int ai_pool_new(int n_threads, ai_pool **out);
/* Stops and joins the workers; NULL is fine. */
void ai_pool_free(ai_pool *p);
int ai_pool_threads(const ai_pool *p);
void ai_pool_run(ai_pool *p, ai_task_fn fn, void *arg);

/* Physical cores this process may run on (hyper-threads counted once); >= 1. */
int ai_physical_cores(void);

#endif

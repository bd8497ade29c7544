/*
 * A small fork-join thread pool (pthreads). The calling thread takes part as worker 0, so a pool
 * of n threads starts n-1 helpers. lm_pool_run hands the same function to every worker with its
 * index and waits for all of them: no allocation and no queue on the hot path. Kernels split
 * their work by worker index (rows of a matmul, heads of attention), so results never depend
 * on the number of threads.
 */
#ifndef LM_POOL_INT_H
#define LM_POOL_INT_H

typedef struct lm_pool lm_pool;

/* fn(arg, ith, nth): worker ith of nth. */
typedef void (*lm_pool_fn)(void *arg, int ith, int nth);

/* Creates a pool of n_threads (>= 1) workers. Returns NULL on failure. */
lm_pool *lm_pool_create(int n_threads);
void lm_pool_destroy(lm_pool *p);
int lm_pool_size(const lm_pool *p);
/* Runs fn on every worker and returns when all are done. Not reentrant. */
void lm_pool_run(lm_pool *p, lm_pool_fn fn, void *arg);

/* Dynamic split of a job into chunks: every worker takes the next chunk index until they run
 * out, so a worker the OS preempts (for a tracer's writer, say) delays the job by the chunk it
 * holds, not by its whole share. Results must not depend on which worker runs which chunk. A
 * job embeds an lm_chunks set to {0} before lm_pool_run publishes it. */
typedef struct {
    _Atomic long long next;
} lm_chunks;

static inline long long lm_chunk_next(lm_chunks *c)
{
    return __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
}

/* Below this many multiply-adds a job runs on the calling thread: waking a helper costs more
 * than it saves. Kernels give the same bits for any split, so this changes only speed. */
#define LM_POOL_MIN_WORK 65536.0

/* lm_pool_run, or fn(arg, 0, 1) on the calling thread when work is below LM_POOL_MIN_WORK. */
void lm_pool_run_sized(lm_pool *p, lm_pool_fn fn, void *arg, double work);

#endif

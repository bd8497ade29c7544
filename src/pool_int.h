/*
 * A small fork-join thread pool (pthreads) whose jobs are split into chunks that the workers
 * claim one at a time. The calling thread takes part as worker 0, so a pool of n threads starts
 * n-1 helpers. lm_pool_run returns when every chunk has run: no allocation and no queue on the
 * hot path. A job never waits for a helper that has not started on it: when the OS gives a
 * helper's core to another thread (a tracer's writer, say), the other workers take the
 * remaining chunks, and only a chunk already claimed can hold the job up. Chunks must not
 * depend on which worker runs them (rows of a matmul, heads of attention), so results never
 * depend on the number of threads or on scheduling.
 */
#ifndef LM_POOL_INT_H
#define LM_POOL_INT_H

#include <stdint.h>

typedef struct lm_pool lm_pool;

/* fn(arg, chunk, ith): runs chunk `chunk` of the job on worker ith (0 .. size-1; for per-worker
 * scratch buffers). */
typedef void (*lm_pool_fn)(void *arg, int64_t chunk, int ith);

/* Creates a pool of n_threads (>= 1) workers. Returns NULL on failure. */
lm_pool *lm_pool_create(int n_threads);
void lm_pool_destroy(lm_pool *p);
int lm_pool_size(const lm_pool *p);

/* Lends waiting helpers to other work (a tracer's writes, trc_writer_help): while a helper
 * spins waiting for the next job it calls fn(arg) now and then; fn does a few microseconds of
 * work and returns nonzero, or returns 0 at once when it has none. A job published meanwhile
 * waits for the helper's share until fn returns. fn NULL stops it, and returns only once no
 * helper is inside fn any more. */
typedef int (*lm_pool_idle_fn)(void *arg);
void lm_pool_set_idle(lm_pool *p, lm_pool_idle_fn fn, void *arg);

/* Hands fn(arg) to whichever worker is free first: a helper waiting for a job, or the caller
 * at the start of its next job shared with helpers (lm_pool_run publishes the job first, so
 * the helpers run chunks meanwhile). record.c posts the recording of an op there, to run beside
 * the next op. One at a time, from the caller's thread; lm_pool_post_wait must follow. */
void lm_pool_post(lm_pool *p, void (*fn)(void *), void *arg);

/* Returns once the posted function has run: on the caller, now, if no worker has taken it. */
void lm_pool_post_wait(lm_pool *p);

/* Runs chunks 0 .. n_chunks-1 (n_chunks < 2^32) of fn over the workers and returns when all are
 * done. Not reentrant: one job at a time, from one thread. */
void lm_pool_run(lm_pool *p, lm_pool_fn fn, void *arg, int64_t n_chunks);

/* Below this many multiply-adds a job runs on the calling thread: waking a helper costs more
 * than it saves. Kernels give the same bits for any split, so this changes only speed. */
#define LM_POOL_MIN_WORK 65536.0

/* lm_pool_run, or every chunk on the calling thread when work is below LM_POOL_MIN_WORK. */
void lm_pool_run_sized(lm_pool *p, lm_pool_fn fn, void *arg, int64_t n_chunks, double work);

/* How many chunks to cut n items into: about 8 per worker, each of at least min_items. */
int64_t lm_pool_chunks(const lm_pool *p, int64_t n, int64_t min_items);

#endif

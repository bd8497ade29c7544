/*
 * Fork-join thread pool (see pool_int.h). A job is published by bumping an atomic generation
 * counter; workers spin on it for a short while, yield the core for a while, then sleep on a
 * condition variable (see wait_job). Completion is an atomic counter the caller spins on, then
 * yields on. Depends on pthreads and C11 atomics only.
 */
#include "pool_int.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* A helper waits for the next job in three stages: SPIN_ITERS pause instructions (~50 us on
 * a current x86), then YIELD_ITERS sched_yield calls (~0.5 us each when the core is otherwise
 * free; when another thread wants it, such as a tracer's writer thread, that thread runs
 * instead of our spinning), then it sleeps on the condition variable. A decode step runs a
 * few hundred small jobs back to back, and waking a sleeping thread costs tens of us. */
enum { SPIN_ITERS = 2000, YIELD_ITERS = 200 };

struct lm_pool {
    int n;              /* workers including the caller */
    pthread_t *threads; /* (n - 1) */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_ulong gen;        /* job generation, bumped per lm_pool_run */
    atomic_int n_done;       /* helpers finished with the current job */
    atomic_int n_sleep;      /* helpers blocked on the condition variable */
    atomic_int caller_sleep; /* the caller blocks on `done` until the helpers finish */
    atomic_int stop;
    lm_pool_fn fn;
    void *arg;
};

struct worker_arg {
    lm_pool *p;
    int ith;
};

/* Waits until the generation moves past seen (or stop); returns the new generation. */
static unsigned long wait_job(lm_pool *p, unsigned long seen)
{
    for (int i = 0; i < SPIN_ITERS + YIELD_ITERS; i++) {
        unsigned long g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop)) {
            return g;
        }
        if (i < SPIN_ITERS) {
            cpu_relax();
        } else {
            sched_yield(); /* returns at once when no other thread wants this core */
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleep, 1);
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop)) {
        pthread_cond_wait(&p->wake, &p->mu);
    }
    atomic_fetch_sub(&p->n_sleep, 1);
    pthread_mutex_unlock(&p->mu);
    return atomic_load_explicit(&p->gen, memory_order_acquire);
}

/* The caller waits for the helpers as they wait for jobs: spin, yield, then sleep. Sleeping
 * frees the core when a helper was preempted (by a tracer's writer, say), so that the
 * scheduler can run it there instead of letting us spin while it waits for its turn. */
static void wait_done(lm_pool *p)
{
    for (int i = 0; atomic_load_explicit(&p->n_done, memory_order_acquire) < p->n - 1; i++) {
        if (i < SPIN_ITERS) {
            cpu_relax();
        } else if (i < SPIN_ITERS + YIELD_ITERS) {
            sched_yield();
        } else {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_sleep, 1);
            while (atomic_load(&p->n_done) < p->n - 1) {
                pthread_cond_wait(&p->done, &p->mu);
            }
            atomic_store(&p->caller_sleep, 0);
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
}

static void *worker_main(void *v)
{
    struct worker_arg wa = *(struct worker_arg *)v;
    lm_pool *p = wa.p;
    unsigned long seen = 0;
    free(v);
#ifdef __linux__
    prctl(PR_SET_NAME, "lm-pool", 0, 0, 0); /* for top -H and perf */
#endif
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load(&p->stop)) {
            return NULL;
        }
        p->fn(p->arg, wa.ith, p->n);
        /* seq_cst: pairs with the caller's caller_sleep store then n_done load */
        if (atomic_fetch_add(&p->n_done, 1) + 1 == p->n - 1 && atomic_load(&p->caller_sleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

lm_pool *lm_pool_create(int n_threads)
{
    lm_pool *p = calloc(1, sizeof *p);
    if (!p || n_threads < 1) {
        free(p);
        return NULL;
    }
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        lm_pool_destroy(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            lm_pool_destroy(p);
            return NULL;
        }
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            lm_pool_destroy(p);
            return NULL;
        }
        p->n = i + 1;
    }
    p->n = n_threads;
    return p;
}

void lm_pool_destroy(lm_pool *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n && p->threads; i++) {
        pthread_join(p->threads[i - 1], NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int lm_pool_size(const lm_pool *p)
{
    return p->n;
}

void lm_pool_run(lm_pool *p, lm_pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the n_sleep check below */
    if (atomic_load(&p->n_sleep) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    wait_done(p);
}

void lm_pool_run_sized(lm_pool *p, lm_pool_fn fn, void *arg, double work)
{
    if (work < LM_POOL_MIN_WORK) {
        fn(arg, 0, 1);
        return;
    }
    lm_pool_run(p, fn, arg);
}

/*
 * Fork-join thread pool with chunked jobs (see pool_int.h). A job is published by bumping an
 * atomic generation counter; workers spin on it for a short while, yield the core for a while,
 * then sleep on a condition variable (see wait_job). Each worker, the caller included, claims
 * chunks with a compare-and-swap until none is left; completion is a count of chunks run that
 * the caller spins on, yields on, then sleeps on. While a helper spins it takes a posted
 * function (lm_pool_post: the recording of an op) or lends itself to an idle function
 * (lm_pool_set_idle: a tracer's writes). Depends on pthreads and C11 atomics only.
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
/* While spinning, a helper calls the idle function (lm_pool_set_idle) every IDLE_EVERY pauses. */
enum { IDLE_EVERY = 16 };

struct lm_pool {
    int n;              /* workers including the caller */
    pthread_t *threads; /* (n - 1) */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_ulong gen; /* job generation, bumped per job */
    /* The job: written by the caller before it bumps gen. claim is (gen mod 2^32) << 32 | the
     * next unclaimed chunk; a worker claims chunk k with a compare-and-swap on it, so a worker
     * that is late (it read gen of a finished job) can never run a chunk of another job. */
    _Atomic(lm_pool_fn) fn;
    _Atomic(void *) arg;
    atomic_llong n_chunks;
    atomic_ullong claim;
    atomic_llong n_finished; /* chunks of the current job that have run */
    atomic_int n_sleep;      /* helpers blocked on the condition variable */
    atomic_int caller_sleep; /* the caller blocks on `done` until the last chunk has run */
    atomic_int stop;
    _Atomic(lm_pool_idle_fn) idle_fn; /* lm_pool_set_idle */
    _Atomic(void *) idle_arg;
    atomic_int in_idle; /* helpers inside idle_fn */
    /* lm_pool_post: post_state goes POST_NONE -> POSTED (caller) -> TAKEN (the worker that wins
     * the compare-and-swap) -> RAN (that worker, release) -> POST_NONE (lm_pool_post_wait) */
    atomic_int post_state;
    void (*post_fn)(void *);
    void *post_arg;
};

enum { POST_NONE, POSTED, TAKEN, RAN };

#define NO_CHUNK 0xffffffffULL

struct worker_arg {
    lm_pool *p;
    int ith;
};

/* Calls the idle function if one is set: whether it did some work. in_idle is raised before
 * the function is read (seq_cst both), so lm_pool_set_idle(NULL) sees every call it must wait
 * for. */
static int run_idle(lm_pool *p)
{
    if (!atomic_load_explicit(&p->idle_fn, memory_order_relaxed)) {
        return 0;
    }
    atomic_fetch_add(&p->in_idle, 1);
    lm_pool_idle_fn fn = atomic_load(&p->idle_fn);
    int did = fn ? fn(atomic_load(&p->idle_arg)) : 0;
    atomic_fetch_sub(&p->in_idle, 1);
    return did;
}

/* Runs the posted function if no other worker has taken it: whether this one did. */
static int take_posted(lm_pool *p)
{
    int expect = POSTED;
    if (atomic_load_explicit(&p->post_state, memory_order_relaxed) != POSTED ||
        !atomic_compare_exchange_strong(&p->post_state, &expect, TAKEN)) {
        return 0;
    }
    p->post_fn(p->post_arg); /* fn and arg were written before POSTED (seq_cst) */
    atomic_store_explicit(&p->post_state, RAN, memory_order_release);
    return 1;
}

/* Waits until the generation moves past seen (or stop); returns the new generation. While
 * spinning it takes a posted function, or lends itself to the idle function; work done starts
 * the spin over. */
static unsigned long wait_job(lm_pool *p, unsigned long seen)
{
    for (int i = 0; i < SPIN_ITERS + YIELD_ITERS; i++) {
        unsigned long g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop)) {
            return g;
        }
        if (i < SPIN_ITERS) {
            if (take_posted(p) || (i % IDLE_EVERY == 0 && run_idle(p))) {
                i = -1;
                continue;
            }
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

/* Claims the next chunk of job g32 (of n): its index, or -1 when none is left or the job is
 * not the current one. */
static int64_t claim_next(lm_pool *p, unsigned long long g32, int64_t n)
{
    unsigned long long c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        unsigned long long k = c & NO_CHUNK;
        if ((c >> 32) != g32 || k == NO_CHUNK || (int64_t)k >= n) {
            return -1;
        }
        if (atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            return (int64_t)k;
        }
    }
}

/* Runs chunks of job g32 until none is left; the one who runs the last wakes a sleeping caller. */
static void run_chunks(lm_pool *p, unsigned long long g32, lm_pool_fn fn, void *arg, int64_t n,
                       int ith)
{
    for (int64_t k; (k = claim_next(p, g32, n)) >= 0;) {
        fn(arg, k, ith);
        /* seq_cst: pairs with the caller's caller_sleep store then n_finished load */
        if (atomic_fetch_add(&p->n_finished, 1) + 1 == n && ith != 0 &&
            atomic_load(&p->caller_sleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* The caller waits for the chunks others hold as helpers wait for jobs: spin, yield, then
 * sleep. Sleeping frees the core when a helper holding a chunk was preempted (by a tracer's
 * writer, say), so that the scheduler can run it there. */
static void wait_finished(lm_pool *p, int64_t n)
{
    for (int i = 0; atomic_load_explicit(&p->n_finished, memory_order_acquire) < n; i++) {
        if (i < SPIN_ITERS) {
            cpu_relax();
        } else if (i < SPIN_ITERS + YIELD_ITERS) {
            sched_yield();
        } else {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_sleep, 1);
            while (atomic_load(&p->n_finished) < n) {
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
        /* acquire: if these are already the next job's, so is claim, and nothing runs */
        lm_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
        void *arg = atomic_load_explicit(&p->arg, memory_order_acquire);
        int64_t n = atomic_load_explicit(&p->n_chunks, memory_order_acquire);
        run_chunks(p, seen & NO_CHUNK, fn, arg, n, wa.ith);
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
    atomic_store(&p->claim, NO_CHUNK); /* generation 0: no job */
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

void lm_pool_set_idle(lm_pool *p, lm_pool_idle_fn fn, void *arg)
{
    atomic_store(&p->idle_fn, NULL);
    while (atomic_load(&p->in_idle) > 0) { /* a call that read the old function */
        cpu_relax();
    }
    if (fn) {
        atomic_store(&p->idle_arg, arg);
        atomic_store(&p->idle_fn, fn);
    }
}

void lm_pool_post(lm_pool *p, void (*fn)(void *), void *arg)
{
    p->post_fn = fn;
    p->post_arg = arg;
    atomic_store(&p->post_state, POSTED);
}

void lm_pool_post_wait(lm_pool *p)
{
    if (atomic_load(&p->post_state) == POST_NONE) {
        return;
    }
    take_posted(p);
    /* a helper is running it: a record takes microseconds, unless it waits for the tracer's
     * queue to have room, which the tracer's own threads make */
    for (int i = 0; atomic_load_explicit(&p->post_state, memory_order_acquire) != RAN; i++) {
        if (i < SPIN_ITERS) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
    atomic_store_explicit(&p->post_state, POST_NONE, memory_order_relaxed);
}

int lm_pool_size(const lm_pool *p)
{
    return p->n;
}

void lm_pool_run(lm_pool *p, lm_pool_fn fn, void *arg, int64_t n_chunks)
{
    if (p->n == 1 || n_chunks <= 1) {
        for (int64_t k = 0; k < n_chunks; k++) {
            fn(arg, k, 0);
        }
        return;
    }
    const unsigned long g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    const unsigned long long g32 = g & NO_CHUNK;
    /* a late worker of the last job sees another generation in claim before the new job */
    atomic_store(&p->claim, g32 << 32 | NO_CHUNK);
    atomic_store_explicit(&p->fn, fn, memory_order_release);
    atomic_store_explicit(&p->arg, arg, memory_order_release);
    atomic_store_explicit(&p->n_chunks, n_chunks, memory_order_release);
    atomic_store_explicit(&p->n_finished, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, g32 << 32, memory_order_release);
    atomic_store(&p->gen, g); /* seq_cst: pairs with the n_sleep check below */
    if (atomic_load(&p->n_sleep) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    take_posted(p); /* the helpers have the job: its chunks go on while the caller is away */
    run_chunks(p, g32, fn, arg, n_chunks, 0);
    wait_finished(p, n_chunks);
}

void lm_pool_run_sized(lm_pool *p, lm_pool_fn fn, void *arg, int64_t n_chunks, double work)
{
    if (work < LM_POOL_MIN_WORK) {
        for (int64_t k = 0; k < n_chunks; k++) {
            fn(arg, k, 0);
        }
        return;
    }
    lm_pool_run(p, fn, arg, n_chunks);
}

int64_t lm_pool_chunks(const lm_pool *p, int64_t n, int64_t min_items)
{
    int64_t c = (int64_t)p->n * 8;
    if (min_items > 0 && n / min_items < c) {
        c = n / min_items;
    }
    return c < 1 ? 1 : c;
}

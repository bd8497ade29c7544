/*
 * Fork-join thread pool (see pool_int.h). Workers sleep on a condition variable between jobs; a
 * job is published by bumping a generation counter, and completion is counted under the mutex.
 * Depends on pthreads only.
 */
#include "pool_int.h"

#include <pthread.h>
#include <stdlib.h>

struct lm_pool {
    int n;              /* workers including the caller */
    pthread_t *threads; /* (n - 1) */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    unsigned long gen; /* job generation, bumped per lm_pool_run */
    int n_done;        /* helpers finished with the current job */
    int stop;
    lm_pool_fn fn;
    void *arg;
};

struct worker_arg {
    lm_pool *p;
    int ith;
};

static void *worker_main(void *v)
{
    struct worker_arg wa = *(struct worker_arg *)v;
    lm_pool *p = wa.p;
    unsigned long seen = 0;
    free(v);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->stop) {
            pthread_cond_wait(&p->wake, &p->mu);
        }
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        lm_pool_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);

        fn(arg, wa.ith, p->n);

        pthread_mutex_lock(&p->mu);
        p->n_done++;
        if (p->n_done == p->n - 1) {
            pthread_cond_signal(&p->done);
        }
        pthread_mutex_unlock(&p->mu);
    }
}

lm_pool *lm_pool_create(int n_threads)
{
    lm_pool *p = calloc(1, sizeof *p);
    if (!p || n_threads < 1) {
        free(p);
        return NULL;
    }
    p->n = n_threads;
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
            p->n = i;
            lm_pool_destroy(p);
            return NULL;
        }
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n = i;
            lm_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void lm_pool_destroy(lm_pool *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_done = 0;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n);

    pthread_mutex_lock(&p->mu);
    while (p->n_done < p->n - 1) {
        pthread_cond_wait(&p->done, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

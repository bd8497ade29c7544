/*
 * trc_writer_prep.c - the compressor: a thread between the engine and the writer's worker. Jobs
 * go through its queue in order; for the copied tensors of level-full ops it computes the hash
 * and the stats and runs the codec, then hands the job on (trc__forward). The worker then only
 * has SQLite left for them (trc_wdb.c uses what it finds made). Both threads are SCHED_IDLE: they
 * take the cores the engine leaves, and while the engine waits in trc_step_end for a commit
 * both of its cores are free, so the compression of the step's last tensors and the SQLite
 * writes of its first ones overlap instead of following each other. A tensor the compressor has
 * already compressed in this batch (same hash and size) is left to the worker's deduplication;
 * the worker compresses whatever it finds not done, so the compressor is only ever a head start.
 * Depends on pthreads and the codec (trc_codec.c, trc_scan.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "trc_writer_int.h"

/* Forward to the worker after this many tensor bytes compressed, so that it starts on the step's
 * first ops while the compressor works on the next ones. */
enum { FORWARD_BYTES = 256 << 10, SEEN = 1024 };

void trc__job_free(trc_writer *w, struct trc__job *job)
{
    if (job && job->kind == TRC__JOB_OP) {
        for (int k = 0; k < job->op->n_tensors; k++) {
            free(job->op->t[k].blob);
        }
    }
    if (job && job->spare) {
        struct trc__job *top = atomic_load_explicit(&w->spare, memory_order_relaxed);
        do {
            job->next = top;
        } while (!atomic_compare_exchange_weak_explicit(&w->spare, &top, job, memory_order_release,
                                                        memory_order_relaxed));
        return;
    }
    free(job);
}

/* Hash, stats and blob of tensor t (a copy at level full); seen[] holds the hashes of recent
 * blobs (0 = empty) so that identical content is compressed once. Returns the bytes handled. */
static size_t prep_tensor(trc_writer *w, struct trc__jtensor *t, uint64_t seen[SEEN])
{
    size_t width = trc__dtype_size(t->dtype);
    trc__hash_stats(t->data, t->dtype, (size_t)t->n_stored, &t->hash, &t->st);
    t->has_hash = t->has_stats = true;
    uint64_t key = t->hash ^ ((uint64_t)t->n_stored * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)t->dtype;
    uint64_t *slot = &seen[key % SEEN];
    if (*slot == key) {
        return 0; /* the worker's dedupe map will have it, or it compresses it itself */
    }
    const uint8_t *blob = NULL;
    size_t len = 0;
    char msg[64];
    if (trc__codec_encode(&w->pcs, w->zstd_level, t->data, (size_t)t->n_stored, width, &blob, &len,
                          msg, sizeof msg) < 0 ||
        !(t->blob = malloc(len ? len : 1))) {
        return 0; /* left to the worker, which reports the error */
    }
    memcpy(t->blob, blob, len);
    t->blob_len = len;
    *slot = key;
    return (size_t)t->n_stored * width;
}

/* The work of one job: bytes compressed. The blobs count in job->bytes from now on, and in
 * *held (to be added to the queue's total when the job is handed on): the queue bound covers
 * them until the worker frees the job. */
static size_t prep_job(trc_writer *w, struct trc__job *job, uint64_t seen[SEEN], size_t *held)
{
    if (job->kind != TRC__JOB_OP || job->op->level != TRC_LEVEL_FULL) {
        return 0;
    }
    size_t n = 0;
    for (int k = 0; k < job->op->n_tensors; k++) {
        struct trc__jtensor *t = &job->op->t[k];
        if (t->data && t->src < 0 && !t->known && !t->has_hash && t->n_stored > 0) {
            n += prep_tensor(w, t, seen);
            job->bytes += t->blob_len;
            *held += t->blob_len;
        }
    }
    return n;
}

/* Runs a batch taken from the queue, forwarding it to the worker in pieces. */
static void prep_batch(trc_writer *w, struct trc__job *job, uint64_t seen[SEEN])
{
    struct trc__job *first = job;
    size_t done = 0, held = 0;
    int64_t t0 = trc__cpu_ns();
    while (job) {
        struct trc__job *next = job->next;
        done += prep_job(w, job, seen, &held);
        if (!next || done >= FORWARD_BYTES || job->kind != TRC__JOB_OP) {
            job->next = NULL;
            pthread_mutex_lock(&w->mu);
            w->queued_bytes += held;
            trc__forward(w, first, job);
            pthread_mutex_unlock(&w->mu);
            first = next;
            done = held = 0;
        }
        job = next;
    }
    atomic_fetch_add(&w->prep_ns, trc__cpu_ns() - t0);
}

static void *prep_main(void *arg)
{
    trc_writer *w = arg;
#ifdef __linux__
    prctl(PR_SET_NAME, "trc-compress", 0, 0, 0);
#endif
    trc__lower_priority();
    uint64_t *seen = calloc(SEEN, sizeof *seen);
    pthread_mutex_lock(&w->mu);
    struct trc__job *batch;
    while ((batch = trc__queue_take(w, &w->p_head, &w->p_tail, &w->prep_idle, &w->prep_stop,
                                    &w->cv_prep))) {
        pthread_mutex_unlock(&w->mu);
        if (seen) {
            memset(seen, 0, SEEN * sizeof *seen); /* a batch at a time: blobs of older ones
                                                     are in the worker's dedupe map */
            prep_batch(w, batch, seen);
        } else { /* no memory for the table: hand everything on as it is */
            pthread_mutex_lock(&w->mu);
            struct trc__job *last = batch;
            while (last->next) {
                last = last->next;
            }
            trc__forward(w, batch, last);
            pthread_mutex_unlock(&w->mu);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    free(seen);
    return NULL;
}

int trc__prep_start(trc_writer *w, char *msg, size_t msglen)
{
    w->has_prep = true; /* before the thread reads it; the worker starts after */
    if (pthread_create(&w->prep_thread, NULL, prep_main, w) != 0) {
        w->has_prep = false;
        snprintf(msg, msglen, "%s: cannot start the compression thread", w->path);
        return TRC_ENOMEM;
    }
    return 0;
}

void trc__prep_stop(trc_writer *w)
{
    if (!w->has_prep) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->prep_stop = true;
    pthread_cond_signal(&w->cv_prep);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->prep_thread, NULL);
    pthread_mutex_lock(&w->mu); /* the worker reads it under mu */
    w->has_prep = false;
    pthread_mutex_unlock(&w->mu);
}

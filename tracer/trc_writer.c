/*
 * trc_writer.c - the recording side of trc.h, as the engine sees it: argument checks, recording
 * rules, runs, tokens and steps, and a bounded FIFO of self-contained jobs drained by one
 * worker thread that hashes, computes stats, compresses and writes (trc_wdb.c); with threads,
 * jobs pass a compression thread first (trc_writer_prep.c) that does the hashing and the codec
 * of level-full copies ahead of it. Ops are turned into jobs by trc_writer_op.c. The queue holds at
 * most queue_mb of job bytes, so memory stays bounded whatever the engine's pace; the worker is
 * woken in batches (not for every op: each wake-up takes a core from the engine), and trc_step_end
 * waits for the step's commit. Jobs with nothing to compress may also run on an engine thread
 * lent through trc_writer_help, and on the caller in trc_step_end: one thread at a time (busy),
 * always the oldest job. Copying committed steps from the WAL into the file is the checkpoint
 * thread's job (trc_ckpt.c). A worker error is sticky: every later call returns it, and committed
 * steps stay valid.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/file.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trc_writer_int.h"

/* The worker is woken once this many bytes (or op jobs) wait, or at once for any job that is not
 * quiet (struct trc__job). Ops at level stats (a few hundred bytes each) wait for an engine
 * thread to lend itself (trc_writer_help) or for trc_step_end, whose caller runs what is left;
 * copies at level full go in 256 KiB batches, so that compression overlaps the step and little
 * is left to do when the engine waits for the commit. The worker runs as SCHED_IDLE
 * (trc_writer_int.h): waking it never takes a core from the engine. */
enum { WAKE_JOBS = 4096, WAKE_BYTES = 256 << 10 };

int64_t trc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Linux's policy numbers: <sched.h> hides the names without _GNU_SOURCE. */
enum { TRC__SCHED_BATCH = 3, TRC__SCHED_IDLE = 5 };

void trc__lower_priority(void)
{
#ifdef __linux__
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), TRC__SCHED_IDLE, &sp) != 0) {
        pthread_setschedparam(pthread_self(), TRC__SCHED_BATCH, &sp);
    }
#endif
}

int64_t trc__cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int trc__wfail(trc_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *trc_writer_errmsg(const trc_writer *w)
{
    return w ? w->msg : "no writer";
}

/* ---- the queue ----------------------------------------------------------------------------- */

/* Runs one job on the worker thread (or inline when synchronous), without mu. */
static void job_run(trc_writer *w, struct trc__job *job)
{
    char msg[TRC__MSG_SIZE - 128];
    int rc = 0;
    if (atomic_load(&w->werr) == 0) {
        rc = trc__wdb_job(w, job, msg, sizeof msg);
    }
    if (rc < 0) {
        pthread_mutex_lock(&w->mu);
        if (w->werr == 0) {
            w->werr = rc;
            snprintf(w->wmsg, sizeof w->wmsg, "%s: %s", w->path, msg);
        }
        pthread_mutex_unlock(&w->mu);
    }
}

/* Publishes the worker's progress up to job `seqno` having freed `bytes` of the queue, and
 * wakes the caller if it waits for that (mu held). */
static void publish(trc_writer *w, uint64_t seqno, size_t bytes)
{
    w->st.n_ops = w->wst.n_ops;
    w->st.n_tensors = w->wst.n_tensors;
    w->st.n_dedup = w->wst.n_dedup;
    w->st.n_linked = w->wst.n_linked;
    w->st.raw_bytes = w->wst.raw_bytes;
    w->st.stored_bytes = w->wst.stored_bytes;
    w->st.worker_ns = w->wst.worker_ns;
    w->st.n_helped = w->wst.n_helped;
    w->st.help_ns = w->wst.help_ns;
    w->queued_bytes -= bytes;
    w->done = seqno;
    /* wake the caller only for what it waits for: not once per op of the step it waits on */
    if (w->wait_seqno && w->done >= w->wait_seqno) {
        pthread_cond_signal(&w->cv_done);
    }
    if (w->wait_space && w->queued_bytes + w->wait_space <= w->cap_bytes) {
        pthread_cond_signal(&w->cv_space);
    }
}

static void job_process(trc_writer *w, struct trc__job *job)
{
    bool step_end = job->kind == TRC__JOB_STEP_END;
    int64_t t0 = trc__cpu_ns();
    job_run(w, job);
    w->wst.worker_ns += trc__cpu_ns() - t0;
    pthread_mutex_lock(&w->mu);
    publish(w, job->seqno, job->bytes);
    pthread_mutex_unlock(&w->mu);
    trc__job_free(w, job);
    if (step_end && atomic_load(&w->werr) == 0) {
        trc__wdb_maybe_checkpoint(w);
    }
}

/* The worker takes every queued job at once and runs them without the lock, publishing its
 * progress after a step ends (the caller waits for that), after every PUBLISH_BYTES of tensor
 * data (the caller may wait for room) and at the end of the batch. After a step's commit is
 * published it hands the WAL to the checkpointer (trc__wdb_maybe_checkpoint), so that the copy
 * into the database overlaps the engine's next step instead of delaying trc_step_end. */
enum { PUBLISH_BYTES = 1 << 20 };

static void run_batch(trc_writer *w, struct trc__job *job)
{
    size_t freed = 0;
    int64_t t0 = trc__cpu_ns(); /* a system call: read per publish, not per job */
    while (job) {
        struct trc__job *next = job->next;
        bool step_end = job->kind == TRC__JOB_STEP_END || job->kind == TRC__JOB_SYNC;
        if (next) {
            trc__wdb_prefetch(w, next);
        }
        job_run(w, job);
        freed += job->bytes;
        if (!next || step_end || freed >= PUBLISH_BYTES) {
            int64_t t1 = trc__cpu_ns();
            w->wst.worker_ns += t1 - t0;
            t0 = t1;
            pthread_mutex_lock(&w->mu);
            publish(w, job->seqno, freed);
            pthread_mutex_unlock(&w->mu);
            freed = 0;
        }
        trc__job_free(w, job);
        if (step_end && atomic_load(&w->werr) == 0) {
            trc__wdb_maybe_checkpoint(w);
        }
        job = next;
    }
}

static void *worker_main(void *arg)
{
    trc_writer *w = arg;
#ifdef __linux__
    prctl(PR_SET_NAME, "trc-writer", 0, 0, 0); /* for top -H and perf */
    trc__lower_priority();                     /* SCHED_IDLE (trc_writer_int.h) */
#endif
    pthread_mutex_lock(&w->mu);
    struct trc__job *batch;
    while ((batch = trc__queue_take(w, &w->head, &w->tail, &w->idle, &w->stop, &w->cv_work))) {
        if (w->busy) {
            /* A helper runs the job before these (trc_writer_help). Give them back before
             * waiting: a helper may take the next job while this thread waits, and it must be
             * the oldest, not one queued after this batch. */
            struct trc__job *last = batch;
            while (last->next) {
                last = last->next;
            }
            last->next = w->head; /* empty: mu is held since the take */
            w->head = batch;
            w->tail = w->tail ? w->tail : last;
            while (w->busy) {
                w->busy_wait = true;
                pthread_cond_wait(&w->cv_busy, &w->mu);
            }
            continue;
        }
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, batch);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* A job an engine thread may run in place of the worker (mu held, no thread busy): an op with
 * no copy to hash and compress (level stats, or every tensor linked), only rows to write; a
 * token; the begin of a step with nothing before it to commit. The caller waiting in
 * trc_step_end also runs the other jobs without tensor copies: it would wait for them anyway. */
static bool light(const trc_writer *w, const struct trc__job *job, bool caller)
{
    switch (job->kind) {
    case TRC__JOB_OP:
        for (int k = 0; k < job->op->n_tensors; k++) {
            if (job->op->t[k].data) {
                return false;
            }
        }
        return true;
    case TRC__JOB_TOKEN:
        return true;
    case TRC__JOB_STEP_BEGIN:
        return caller || (job->quiet && !w->in_tx && trc__wdb_before_step_is_quick(w));
    default:
        return caller;
    }
}

/* Takes the oldest job not yet started if it is light and no thread runs jobs (mu held), and
 * marks the writer busy. Jobs pass the compressor's queue first when it runs, then the
 * worker's: the oldest is the head of the first non-empty one, while the stages before it are
 * idle. */
static struct trc__job *take_light(trc_writer *w, bool caller)
{
    if (w->busy || (w->has_prep && (w->head || !w->prep_idle))) {
        return NULL;
    }
    struct trc__job **head = w->has_prep ? &w->p_head : &w->head;
    struct trc__job **tail = w->has_prep ? &w->p_tail : &w->tail;
    struct trc__job *job = *head;
    if (!job || !light(w, job, caller)) {
        return NULL;
    }
    *head = job->next;
    if (!*head) {
        *tail = NULL;
    }
    job->next = NULL;
    if (w->pending_jobs > 0) {
        w->pending_jobs--;
    }
    w->busy = true;
    return job;
}

/* Runs a job taken by take_light on the calling thread (mu held on entry and on return); a
 * helper counts it in n_helped and help_ns. */
static void run_taken(trc_writer *w, struct trc__job *job, bool helper)
{
    pthread_mutex_unlock(&w->mu);
    int64_t t0 = trc__now_ns(); /* the thread's CPU time would cost two system calls */
    job_run(w, job);
    if (job->kind == TRC__JOB_STEP_END && atomic_load(&w->werr) == 0) {
        trc__wdb_maybe_checkpoint(w); /* worker-side state: while still busy */
    }
    if (helper) {
        w->wst.n_helped++;
        w->wst.help_ns += trc__now_ns() - t0;
    }
    pthread_mutex_lock(&w->mu);
    publish(w, job->seqno, job->bytes);
    w->busy = false;
    if (w->busy_wait) {
        w->busy_wait = false;
        pthread_cond_signal(&w->cv_busy);
    }
    trc__job_free(w, job);
}

int trc_writer_help(trc_writer *w)
{
    if (!w || !w->has_thread || !atomic_load_explicit(&w->help_hint, memory_order_relaxed) ||
        pthread_mutex_trylock(&w->mu) != 0) {
        return 0;
    }
    struct trc__job *job = take_light(w, false);
    if (!job) {
        atomic_store_explicit(&w->help_hint, false, memory_order_relaxed);
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    run_taken(w, job, true);
    pthread_mutex_unlock(&w->mu);
    return 1;
}

struct trc__job *trc__queue_take(trc_writer *w, struct trc__job **head, struct trc__job **tail,
                                 bool *idle, const bool *stop, pthread_cond_t *cv)
{
    while (!*head && !*stop) {
        *idle = true;
        if (idle == (w->has_prep ? &w->prep_idle : &w->idle)) { /* the stage trc__submit wakes */
            w->pending_jobs = 0;
            w->pending_bytes = 0;
        }
        pthread_cond_wait(cv, &w->mu);
    }
    *idle = false;
    struct trc__job *batch = *head; /* NULL: stop requested and the queue is drained */
    *head = *tail = NULL;
    return batch;
}

/* Wakes the first stage if it sleeps: the compressor when it runs, else the worker (mu held). */
static void wake(trc_writer *w)
{
    if (w->has_prep ? w->prep_idle : w->idle) {
        w->pending_jobs = 0;
        w->pending_bytes = 0;
        pthread_cond_signal(w->has_prep ? &w->cv_prep : &w->cv_work);
    }
}

void trc__forward(trc_writer *w, struct trc__job *first, struct trc__job *last)
{
    if (w->tail) {
        w->tail->next = first;
    } else {
        w->head = first;
    }
    w->tail = last;
    if (w->idle) {
        pthread_cond_signal(&w->cv_work);
    }
}

/* Hands a job (malloc'd, owned by the queue from now on) to the worker; waits for room first.
 * Returns the job's sequence number. */
uint64_t trc__submit(trc_writer *w, struct trc__job *job)
{
    pthread_mutex_lock(&w->mu);
    job->seqno = ++w->submitted;
    if (!w->has_thread) {
        w->queued_bytes += job->bytes;
        pthread_mutex_unlock(&w->mu);
        job_process(w, job);
        return w->submitted;
    }
    if (w->queued_bytes > 0 && w->queued_bytes + job->bytes > w->cap_bytes) {
        int64_t t0 = trc__now_ns();
        wake(w);
        w->wait_space = job->bytes;
        while (w->queued_bytes > 0 && w->queued_bytes + job->bytes > w->cap_bytes) {
            pthread_cond_wait(&w->cv_space, &w->mu);
        }
        w->wait_space = 0;
        w->st.wait_ns += trc__now_ns() - t0;
    }
    w->queued_bytes += job->bytes;
    job->next = NULL;
    struct trc__job **head = w->has_prep ? &w->p_head : &w->head;
    struct trc__job **tail = w->has_prep ? &w->p_tail : &w->tail;
    if (*tail) {
        (*tail)->next = job;
    } else {
        *head = job;
    }
    *tail = job;
    w->pending_jobs++;
    w->pending_bytes += job->bytes;
    if (job->quiet) {
        atomic_store_explicit(&w->help_hint, true, memory_order_relaxed);
    }
    if (!job->quiet || w->pending_jobs >= WAKE_JOBS || w->pending_bytes >= WAKE_BYTES) {
        wake(w);
    }
    uint64_t seqno = job->seqno;
    pthread_mutex_unlock(&w->mu);
    return seqno;
}

/* Waits until job seqno is processed; returns the sticky worker error (copied to w->msg). With
 * run_jobs, the caller runs what it can of the jobs up to seqno itself (the last ops of a step
 * and its commit, at level stats): no thread has to be woken for them. It wakes the worker
 * before it sleeps, for quiet jobs it could not take. */
static int wait_done(trc_writer *w, uint64_t seqno, bool run_jobs)
{
    int64_t t0 = trc__now_ns();
    pthread_mutex_lock(&w->mu);
    w->wait_seqno = seqno;
    while (w->done < seqno) {
        struct trc__job *job = run_jobs ? take_light(w, true) : NULL;
        if (job) {
            run_taken(w, job, false);
            continue;
        }
        wake(w);
        pthread_cond_wait(&w->cv_done, &w->mu);
    }
    w->wait_seqno = 0;
    w->st.wait_ns += trc__now_ns() - t0;
    int rc = w->werr;
    if (rc < 0) {
        snprintf(w->msg, sizeof w->msg, "%s", w->wmsg);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* The sticky error without waiting. */
int trc__sticky(trc_writer *w)
{
    if (atomic_load(&w->werr) == 0) {
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    int rc = w->werr;
    if (rc < 0) {
        snprintf(w->msg, sizeof w->msg, "%s", w->wmsg);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* A job with room for `extra` bytes of strings after it; strings are copied with put_str. */
static struct trc__job *job_new(trc_writer *w, enum trc__job_kind kind, size_t extra)
{
    struct trc__job *job = calloc(1, sizeof *job + extra);
    if (job) {
        job->kind = kind;
        job->i[0] = w->run_id;
    }
    return job;
}

static const char *put_str(char **cursor, const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* ---- open / close -------------------------------------------------------------------------- */

/* Creates the file exclusively and takes the writer lock (flock on the trace file itself, which
 * is independent of SQLite's fcntl locks). An existing file is refused unless overwrite, and is
 * never replaced while another writer holds it. */
static int create_locked(const char *path, bool overwrite, int *fd_out, char *msg, size_t msglen)
{
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            snprintf(msg, msglen, "%s: %s; refusing to overwrite it", path,
                     S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
            return TRC_EEXIST;
        }
        if (!overwrite) {
            snprintf(msg, msglen, "%s: file exists; refusing to overwrite it", path);
            return TRC_EEXIST;
        }
        int ofd = open(path, O_RDONLY | O_CLOEXEC);
        if (ofd >= 0 && flock(ofd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
            close(ofd);
            snprintf(msg, msglen, "%s: trace is open for writing by another writer", path);
            return TRC_EBUSY;
        }
        if (ofd >= 0) {
            close(ofd);
        }
        static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
        for (int i = 0; i < 4; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s%s", path, sfx[i]);
            if (unlink(p) < 0 && errno != ENOENT) {
                char os[128];
                snprintf(msg, msglen, "%s: cannot remove the old trace: %s", path,
                         trc__os_error(errno, os, sizeof os));
                return TRC_EIO;
            }
        }
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        const int e = errno;
        char os[128];
        snprintf(msg, msglen, "%s: cannot create the trace: %s", path,
                 trc__os_error(e, os, sizeof os));
        return e == EEXIST ? TRC_EBUSY : TRC_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(msg, msglen, "%s: trace is open for writing by another writer", path);
        close(fd);
        return TRC_EBUSY;
    }
    *fd_out = fd;
    return 0;
}

static void writer_free(trc_writer *w)
{
    for (int i = 0; i < w->n_rules; i++) {
        free(w->rules[i]);
    }
    free(w->rules);
    trc__codec_scratch_release(&w->cs);
    trc__codec_scratch_release(&w->pcs);
    trc__links_release(&w->links);
    for (int k = 0; k < 2; k++) {
        struct trc__job *j = k ? atomic_load(&w->spare) : w->spare_caller;
        while (j) {
            struct trc__job *next = j->next;
            free(j);
            j = next;
        }
    }
    free(w->slots);
    free(w->ojs);
    trc__dedupe_release(&w->dd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_prep);
    pthread_cond_destroy(&w->cv_space);
    pthread_cond_destroy(&w->cv_done);
    pthread_cond_destroy(&w->cv_busy);
    if (w->lock_fd >= 0) {
        close(w->lock_fd); /* after sqlite3_close: closing an fd drops the process' fcntl locks */
    }
    free(w->path);
    free(w);
}

int trc_writer_open(const char *path, const struct trc_writer_opts *opts, trc_writer **out,
                    char *errbuf, size_t errlen)
{
    char msg[TRC__MSG_SIZE] = "";
    *out = NULL;
    if (!path || !*path) {
        snprintf(errbuf ? errbuf : msg, errbuf ? errlen : sizeof msg, "empty trace path");
        return TRC_EINVAL;
    }
    trc_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        snprintf(errbuf ? errbuf : msg, errbuf ? errlen : sizeof msg, "out of memory");
        return TRC_ENOMEM;
    }
    w->lock_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_prep, NULL);
    pthread_cond_init(&w->cv_space, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    pthread_cond_init(&w->cv_busy, NULL);
    int qmb = opts && opts->queue_mb > 0 ? opts->queue_mb : 256;
    w->cap_bytes = (size_t)qmb << 20;
    w->zstd_level = opts ? opts->zstd_level : 0;
    w->last_step = -1;
    w->page_size = opts && opts->page_size ? opts->page_size : TRC__PAGE_SIZE;
    if (w->page_size < 512 || w->page_size > 65536 || (w->page_size & (w->page_size - 1))) {
        snprintf(errbuf ? errbuf : msg, errbuf ? errlen : sizeof msg,
                 "%s: bad page size %d (a power of two in 512..65536, or 0 for the default)", path,
                 opts->page_size);
        writer_free(w);
        return TRC_EINVAL;
    }
    int rc = create_locked(path, opts && opts->overwrite, &w->lock_fd, msg, sizeof msg);
    if (rc == 0) {
        rc = trc__wdb_open(w, msg, sizeof msg);
    }
    if (rc == 0 && !(opts && opts->synchronous)) { /* the checkpointer first: a failure after
                                                        the worker started would leave it running */
        rc = trc__wdb_start_ckpt(w, msg, sizeof msg);
        rc = rc < 0 ? rc : trc__prep_start(w, msg, sizeof msg); /* idle until jobs come */
        if (rc == 0 && pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            snprintf(msg, sizeof msg, "%s: cannot start the writer thread", path);
            rc = TRC_ENOMEM;
            trc__prep_stop(w);
        } else if (rc == 0) {
            w->has_thread = true;
        }
    }
    if (rc < 0) {
        char m2[TRC__MSG_SIZE];
        trc__wdb_close(w, m2, sizeof m2);
        if (errbuf && errlen) {
            snprintf(errbuf, errlen, "%s", msg);
        }
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int trc_writer_close(trc_writer *w)
{
    if (!w) {
        return 0;
    }
    int rc = trc__sticky(w);
    if (w->in_step) {
        trc__submit(w, job_new(w, TRC__JOB_STEP_ABORT, 0)); /* an incomplete step is not kept */
        w->in_step = false;
        if (rc == 0 && w->run_id) {
            trc_run_end(w, "error");
        }
    }
    if (w->run_id) {
        trc_run_end(w, "complete");
    }
    struct trc__job *sync = job_new(w, TRC__JOB_SYNC, 0);
    if (sync) {
        wait_done(w, trc__submit(w, sync), false);
    }
    trc__prep_stop(w); /* drained into the worker's queue first */
    if (w->has_thread) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->cv_work);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    char msg[TRC__MSG_SIZE];
    int crc = trc__wdb_close(w, msg, sizeof msg);
    if (rc == 0) {
        rc = trc__sticky(w);
    }
    if (rc == 0 && crc < 0) {
        rc = crc;
    }
    writer_free(w);
    return rc;
}

int trc_writer_flush(trc_writer *w)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    struct trc__job *job = job_new(w, TRC__JOB_SYNC, 0);
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    rc = wait_done(w, trc__submit(w, job), false);
    if (rc == 0 && w->ckpt) {
        trc__ckpt_drain(w->ckpt, true);
    }
    return rc;
}

int trc_writer_wait_idle(trc_writer *w)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    const uint64_t last = w->submitted;
    pthread_mutex_unlock(&w->mu);
    rc = wait_done(w, last, false);
    if (rc == 0 && w->ckpt) {
        trc__ckpt_wait_idle(w->ckpt);
    }
    return rc;
}

int trc_writer_get_stats(trc_writer *w, struct trc_writer_stats *out)
{
    if (!w || !out) {
        return TRC_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
    out->ckpt_ns = w->ckpt ? trc__ckpt_cpu_ns(w->ckpt) : 0;
    out->compress_ns = atomic_load(&w->prep_ns);
    return 0;
}

/* ---- rules --------------------------------------------------------------------------------- */

/* A rule is kept as its text; "LEVEL" or "LEVEL:PATTERN". runs.record_rules holds the rules as
 * a JSON array of these texts, written as they are: no quote, backslash or control character. */
static bool json_safe(const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

static int rule_level(const char *rule, enum trc_level *lvl, const char **pat)
{
    static const char *const names[] = {"none", "stats", "full"};
    const char *colon = strchr(rule, ':');
    size_t n = colon ? (size_t)(colon - rule) : strlen(rule);
    for (int i = 0; i < 3; i++) {
        if (strlen(names[i]) == n && strncmp(rule, names[i], n) == 0) {
            *lvl = (enum trc_level)i;
            *pat = colon ? colon + 1 : NULL;
            return 0;
        }
    }
    return -1;
}

/* Parses "step>8", "step>=8", "step<4", "step<=4", "step=0": 1 if a step condition. */
static int step_cond(const char *pat, char *op, long long *val)
{
    if (strncmp(pat, "step", 4) != 0) {
        return 0;
    }
    const char *p = pat + 4;
    op[0] = *p == '<' || *p == '>' || *p == '=' ? *p++ : '\0';
    op[1] = *p == '=' && op[0] != '=' ? *p++ : '\0';
    char *end;
    errno = 0;
    *val = strtoll(p, &end, 10);
    if (!op[0] || end == p || *end || errno) {
        return -1;
    }
    return 1;
}

static bool rule_matches(const char *pat, const char *name, int64_t step)
{
    char op[2];
    long long v;
    if (!pat) {
        return true;
    }
    if (step_cond(pat, op, &v) == 1) {
        if (op[0] == '=') {
            return step == v;
        }
        if (op[0] == '<') {
            return op[1] ? step <= v : step < v;
        }
        return op[1] ? step >= v : step > v;
    }
    return fnmatch(pat, name, 0) == 0;
}

/* The rules as a JSON array of strings (malloc'd); json_safe holds for each. */
static char *rules_json(const trc_writer *w)
{
    size_t n = 3;
    for (int i = 0; i < w->n_rules; i++) {
        n += strlen(w->rules[i]) + 3;
    }
    char *s = malloc(n);
    if (!s) {
        return NULL;
    }
    size_t k = (size_t)snprintf(s, n, "[");
    for (int i = 0; i < w->n_rules; i++) {
        k += (size_t)snprintf(s + k, n - k, "%s\"%s\"", i ? "," : "", w->rules[i]);
    }
    snprintf(s + k, n - k, "]");
    return s;
}

int trc_writer_add_rule(trc_writer *w, const char *rule)
{
    enum trc_level lvl = TRC_LEVEL_FULL;
    const char *pat = NULL;
    char op[2];
    long long v;
    if (!rule || rule_level(rule, &lvl, &pat) < 0) {
        return trc__wfail(w, TRC_EINVAL,
                          "bad recording rule '%s': level must be none, stats or full",
                          rule ? rule : "(null)");
    }
    if (pat && (!*pat || step_cond(pat, op, &v) < 0)) {
        return trc__wfail(
            w, TRC_EINVAL,
            "bad recording rule '%s': pattern must be a name glob or step<N, step<=N, "
            "step=N, step>=N, step>N",
            rule);
    }
    if (!json_safe(rule)) {
        return trc__wfail(w, TRC_EINVAL,
                          "bad recording rule: no quote, backslash or control character in a "
                          "pattern");
    }
    char **r = realloc(w->rules, (size_t)(w->n_rules + 1) * sizeof *r);
    if (!r) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    w->rules = r;
    if (!(w->rules[w->n_rules] = strdup(rule))) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    w->n_rules++;
    if (w->run_id) { /* keep runs.record_rules up to date */
        char *js = rules_json(w);
        struct trc__job *job = js ? job_new(w, TRC__JOB_RULES, strlen(js) + 1) : NULL;
        if (!job) {
            free(js);
            return trc__wfail(w, TRC_ENOMEM, "out of memory");
        }
        char *cur = (char *)(job + 1);
        job->s[0] = put_str(&cur, js);
        free(js);
        trc__submit(w, job);
    }
    return 0;
}

enum trc_level trc_writer_level(trc_writer *w, const char *name, int64_t step)
{
    for (int i = w->n_rules - 1; i >= 0; i--) {
        enum trc_level lvl = TRC_LEVEL_FULL;
        const char *pat = NULL;
        rule_level(w->rules[i], &lvl, &pat);
        if (rule_matches(pat, name ? name : "", step)) {
            return lvl;
        }
    }
    return TRC_LEVEL_FULL;
}

/* ---- runs, tokens, steps ------------------------------------------------------------------- */

int trc_run_begin(trc_writer *w, const char *source, int64_t *run_id)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (w->run_id) {
        return trc__wfail(w, TRC_EINVAL, "%s: run %lld is still open; end it first", w->path,
                          (long long)w->run_id);
    }
    char *js = rules_json(w);
    const char *src = source && *source ? source : "unknown";
    struct trc__job *job = js ? job_new(w, TRC__JOB_RUN_BEGIN, slen(src) + slen(js)) : NULL;
    if (!job) {
        free(js);
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    w->run_id = ++w->n_runs;
    job->i[0] = w->run_id;
    char *cur = (char *)(job + 1);
    job->s[0] = put_str(&cur, src);
    job->s[1] = put_str(&cur, js);
    free(js);
    w->any_step = false;
    w->last_step = -1;
    if (run_id) {
        *run_id = w->run_id;
    }
    return wait_done(w, trc__submit(w, job), false);
}

/* Common part of trc_run_set_*: checks the key against runs' typed columns. */
static int run_set(trc_writer *w, const char *key, int vtype, const char *s, int64_t i, double f)
{
    static const char want[] = {'T', 'I', 'R'};
    static const char *const fn[] = {"trc_run_set_str", "trc_run_set_i64", "trc_run_set_f64"};
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->run_id) {
        return trc__wfail(w, TRC_EINVAL, "%s: no open run (call trc_run_begin first)", w->path);
    }
    if (!key || !*key || (vtype == 0 && !s)) {
        return trc__wfail(w, TRC_EINVAL, "%s: run setting needs a key and a value", w->path);
    }
    char type = 0;
    const char *col = trc__run_column(key, &type);
    if (col && type == '-') {
        return trc__wfail(w, TRC_EINVAL, "%s: run key '%s' is written by the tracer itself",
                          w->path, key);
    }
    if (col && type != want[vtype] && !(type == 'R' && vtype == 1)) {
        int k = type == 'T' ? 0 : type == 'I' ? 1 : 2;
        return trc__wfail(w, TRC_EINVAL, "%s: run key '%s' has type %s; use %s", w->path, key,
                          type == 'T'   ? "text"
                          : type == 'I' ? "integer"
                                        : "real",
                          fn[k]);
    }
    struct trc__job *job = job_new(w, TRC__JOB_RUN_SET, slen(key) + slen(s));
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    char *cur = (char *)(job + 1);
    job->s[0] = put_str(&cur, key);
    job->s[1] = col;
    job->s[2] = put_str(&cur, s);
    job->vtype = vtype;
    job->i[1] = i;
    job->f = f;
    trc__submit(w, job);
    return 0;
}

int trc_run_set_str(trc_writer *w, const char *key, const char *value)
{
    return run_set(w, key, 0, value, 0, 0.0);
}

int trc_run_set_i64(trc_writer *w, const char *key, int64_t value)
{
    return run_set(w, key, 1, NULL, value, (double)value);
}

int trc_run_set_f64(trc_writer *w, const char *key, double value)
{
    return run_set(w, key, 2, NULL, 0, value);
}

int trc_run_end(trc_writer *w, const char *status)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->run_id) {
        return trc__wfail(w, TRC_EINVAL, "%s: no open run to end", w->path);
    }
    if (w->in_step) {
        return trc__wfail(w, TRC_EINVAL, "%s: step %lld is still open; end it first", w->path,
                          (long long)w->step);
    }
    if (!status || (strcmp(status, "complete") != 0 && strcmp(status, "error") != 0)) {
        return trc__wfail(w, TRC_EINVAL, "%s: run status must be 'complete' or 'error'", w->path);
    }
    struct trc__job *job = job_new(w, TRC__JOB_RUN_END, slen(status));
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    char *cur = (char *)(job + 1);
    job->s[0] = put_str(&cur, status);
    w->run_id = 0;
    return wait_done(w, trc__submit(w, job), false);
}

int trc_token_add(trc_writer *w, int64_t index, int32_t id, const char *piece, bool is_prompt,
                  bool is_bos, float prob, float logit)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->run_id) {
        return trc__wfail(w, TRC_EINVAL, "%s: no open run (call trc_run_begin first)", w->path);
    }
    struct trc__job *job = job_new(w, TRC__JOB_TOKEN, slen(piece));
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    char *cur = (char *)(job + 1);
    job->s[0] = put_str(&cur, piece);
    job->i[1] = index;
    job->i[2] = id;
    job->i[3] = is_prompt;
    job->i[4] = is_bos;
    job->f = (double)prob;
    job->g = (double)logit;
    job->quiet = w->in_step; /* committed with the step: no hurry */
    trc__submit(w, job);
    return 0;
}

int trc_step_begin(trc_writer *w, int64_t step, int64_t pos0, int64_t n_tokens)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->run_id) {
        return trc__wfail(w, TRC_EINVAL, "%s: no open run (call trc_run_begin first)", w->path);
    }
    if (w->in_step) {
        return trc__wfail(w, TRC_EINVAL, "%s: step %lld is still open", w->path,
                          (long long)w->step);
    }
    if (step < 0 || (w->any_step && step <= w->last_step) || pos0 < 0 || n_tokens < 0) {
        return trc__wfail(w, TRC_EINVAL,
                          "%s: bad step %lld (pos0 %lld, n_tokens %lld): steps increase from 0",
                          w->path, (long long)step, (long long)pos0, (long long)n_tokens);
    }
    struct trc__job *job = job_new(w, TRC__JOB_STEP_BEGIN, 0);
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    job->quiet = w->committed == w->submitted; /* caller side: only this thread submits */
    w->in_step = true;
    w->step = step;
    w->step_pos0 = pos0;
    w->step_n_tokens = n_tokens;
    w->seq = 0;
    trc__links_reset(&w->links);
    trc__submit(w, job);
    return 0;
}

int trc_step_end(trc_writer *w, int64_t elapsed_ns)
{
    int rc = trc__sticky(w);
    if (rc < 0) {
        return rc;
    }
    if (!w->in_step) {
        return trc__wfail(w, TRC_EINVAL, "%s: no open step to end", w->path);
    }
    struct trc__job *job = job_new(w, TRC__JOB_STEP_END, 0);
    if (!job) {
        return trc__wfail(w, TRC_ENOMEM, "out of memory");
    }
    job->i[1] = w->step;
    job->i[2] = w->step_pos0;
    job->i[3] = w->step_n_tokens;
    job->i[4] = elapsed_ns;
    w->in_step = false;
    w->any_step = true;
    w->last_step = w->step;
    job->quiet = true; /* the caller runs it unless the worker is at work (wait_done) */
    w->committed = trc__submit(w, job);
    return wait_done(w, w->committed, true);
}

/*
 * trc_ckpt.c - the WAL checkpointer of a trace being written: a thread with its own SQLite
 * connection that copies committed pages from the WAL into the database file while the writer
 * goes on appending (a PASSIVE checkpoint never blocks the writer). Neither the writer thread
 * nor the engine then waits for that copy and its fsync. The writer pokes the checkpointer after
 * each step's commit with the WAL's size; when the WAL has grown large, the writer drains the
 * checkpointer before its next transaction so that SQLite can start the WAL over (it does so
 * only when every frame has been copied). Used only with a writer thread; a synchronous writer
 * checkpoints inline (trc__wdb_maybe_checkpoint).
 *
 * After each pass the database file's pages are dropped from the kernel's page cache
 * (trc__drop_cached): the pass has written them and synced the file, so they are clean, and a
 * trace recorded in full grows by megabytes per token. Kept, they would push the engine's
 * mapped weights out of the cache, and every new page costs the kernel a fresh page frame: on
 * this project's VMs, 2.5 ms of CPU per MB written once the guest's free memory has gone back to
 * the host, against 0.25 ms for a page frame just freed (tests/bench/HISTORY.md, session 19).
 * Dropped, the next pass reuses the frames the last one freed. The WAL is not dropped: the
 * writer rewrites it from its start after each restart, in the same cached pages.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "trc_writer_int.h"

struct trc__ckpt {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_idle;
    bool stop, busy, want; /* want: trc__ckpt_drain asks for a pass whatever the size */
    int64_t threshold;     /* checkpoint once the WAL holds this many bytes */
    int cache_fd;          /* the database file, for trc__drop_cached; -1: none */
    int64_t wal_bytes;     /* the WAL's size at the writer's last commit */
    uint64_t poked;        /* commits reported; a pass started after poke k covers commit k */
    uint64_t passes_from;
    _Atomic int64_t cpu_ns; /* the thread's CPU time after its last pass */
};

static void *ckpt_main(void *arg)
{
    struct trc__ckpt *c = arg;
#ifdef __linux__
    prctl(PR_SET_NAME, "trc-ckpt", 0, 0, 0);
#endif
    trc__lower_priority(); /* SCHED_IDLE, see trc_writer_int.h */
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && !c->want && c->wal_bytes < c->threshold) {
            pthread_cond_wait(&c->cv_work, &c->mu);
        }
        if (c->stop) {
            break;
        }
        c->wal_bytes = 0;
        c->want = false;
        c->busy = true;
        uint64_t covers = c->poked;
        pthread_mutex_unlock(&c->mu);
        /* a failure (disk full, a reader holding old frames) loses nothing: the WAL keeps
         * every committed step, and the writer's next commit reports a full disk */
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        trc__drop_cached(c->cache_fd);
        atomic_store(&c->cpu_ns, trc__cpu_ns());
        pthread_mutex_lock(&c->mu);
        c->busy = false;
        c->passes_from = covers;
        pthread_cond_broadcast(&c->cv_idle);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

void trc__drop_cached(int fd)
{
#ifdef POSIX_FADV_DONTNEED
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); /* advice: a failure changes nothing */
    }
#else
    (void)fd;
#endif
}

int trc__ckpt_start(struct trc__ckpt **out, const char *path, int64_t threshold, int cache_fd,
                    char *msg, size_t msglen)
{
    struct trc__ckpt *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) {
        snprintf(msg, msglen, "out of memory");
        return TRC_ENOMEM;
    }
    c->threshold = threshold;
    c->cache_fd = cache_fd;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) { /* only the checkpoint thread uses it */
        snprintf(msg, msglen, "%s: cannot open for checkpoints: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return TRC_EIO;
    }
    /* the connection learns that the file is in WAL mode when it first reads it */
    if (sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(msg, msglen, "%s: cannot open for checkpoints: %s", path, sqlite3_errmsg(c->db));
        sqlite3_close(c->db);
        free(c);
        return TRC_EIO;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv_work, NULL);
    pthread_cond_init(&c->cv_idle, NULL);
    if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
        snprintf(msg, msglen, "%s: cannot start the checkpoint thread", path);
        sqlite3_close(c->db);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv_work);
        pthread_cond_destroy(&c->cv_idle);
        free(c);
        return TRC_ENOMEM;
    }
    *out = c;
    return 0;
}

void trc__ckpt_poke(struct trc__ckpt *c, int64_t wal_bytes)
{
    pthread_mutex_lock(&c->mu);
    c->poked++;
    c->wal_bytes = wal_bytes;
    if (wal_bytes >= c->threshold && !c->busy) {
        pthread_cond_signal(&c->cv_work);
    }
    pthread_mutex_unlock(&c->mu);
}

bool trc__ckpt_drain(struct trc__ckpt *c, bool wait_busy)
{
    pthread_mutex_lock(&c->mu);
    if (c->busy && !wait_busy) {
        pthread_mutex_unlock(&c->mu);
        return false;
    }
    while (!c->stop && (c->busy || c->passes_from < c->poked)) {
        if (!c->busy) { /* ask for a pass that covers the last commit */
            c->want = true;
            pthread_cond_signal(&c->cv_work);
        }
        pthread_cond_wait(&c->cv_idle, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return true;
}

void trc__ckpt_kick(struct trc__ckpt *c)
{
    pthread_mutex_lock(&c->mu);
    c->want = true;
    pthread_cond_signal(&c->cv_work);
    pthread_mutex_unlock(&c->mu);
}

void trc__ckpt_wait_idle(struct trc__ckpt *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->stop && (c->busy || c->want || c->wal_bytes >= c->threshold)) {
        pthread_cond_wait(&c->cv_idle, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
}

void trc__ckpt_stop(struct trc__ckpt *c)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv_work);
    pthread_cond_broadcast(&c->cv_idle);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv_work);
    pthread_cond_destroy(&c->cv_idle);
    free(c);
}

int64_t trc__ckpt_cpu_ns(struct trc__ckpt *c)
{
    return atomic_load(&c->cpu_ns);
}

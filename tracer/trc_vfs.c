/*
 * trc_vfs.c - the writer's SQLite VFS: the default one, except that what SQLite writes to a WAL
 * file reaches the file in one pwrite per transaction instead of two per page. SQLite writes
 * each WAL frame as two calls, its 24-byte header then the page, and a decode step's commit at
 * level stats is about 20 frames of 8 KiB: 40 system calls, 140-170 us on a VM where one write
 * of the same bytes takes 40-55 us (a microbenchmark of the two patterns), while the engine
 * waits for trc_step_end.
 *
 * The writes are gathered while they follow each other in the file, and passed on, in order:
 *   - once the frame that commits a transaction is complete (a frame header's "database size
 *     after commit" field, bytes 4-7, is non-zero only in a commit frame: sqlite.org/fileformat2
 *     section 4.1), before SQLite publishes the commit in the WAL index, so that no reader (the
 *     checkpoint thread's connection) can be told of a frame that is not in the file yet, and a
 *     process killed after its commit returned has the frames in the file;
 *   - before any other operation on the WAL file (read, sync, truncate, size, close), before a
 *     write elsewhere in the file, and when the buffer is full.
 * An error in passing them on is the error of the write that triggered it, as SQLite would have
 * had it (SQLITE_FULL on a full disk): the transaction fails and rolls back, and what was
 * committed before stays. Until the WAL header (its first 32 bytes, with the page size) has
 * gone through this file, frames cannot be told apart and nothing is gathered. Every other
 * file (the database, journals) is the default VFS's file, untouched.
 *
 * Registered once per process under TRC__VFS_NAME (never as the default); only the writer's own
 * connection names it.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc_writer_int.h"

#define WAL_HDR   32 /* the WAL file's header */
#define FRAME_HDR 24 /* each frame's header, before its page */
#define BUF_CAP   ((size_t)1 << 20)
/* The unix VFS writes at most 0x1ffff bytes per call (os_unix.c's seekAndWriteFd masks the
 * count, and a longer write then fails as a full disk), so the buffer goes out in pieces. */
#define PIECE ((size_t)0x1ffff)

struct walbuf_file {
    sqlite3_file base;   /* pMethods = &walbuf_methods */
    sqlite3_file *real;  /* the default VFS's file, in the bytes after this struct */
    uint8_t *buf;        /* gathered writes, or NULL (nothing gathered yet) */
    size_t len;          /* bytes in buf */
    sqlite3_int64 off;   /* file offset of buf[0] */
    sqlite3_int64 frame; /* frame size (FRAME_HDR + page size); 0 until the WAL header */
};

static sqlite3_vfs *base_vfs; /* the default VFS, set once */
static sqlite3_vfs walbuf_vfs;
static int registered = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int flush(struct walbuf_file *f)
{
    if (f->len == 0) {
        return SQLITE_OK;
    }
    size_t n = f->len;
    f->len = 0; /* after a failure the transaction rolls back: its frames are not wanted */
    int rc = SQLITE_OK;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i += PIECE) {
        size_t k = n - i < PIECE ? n - i : PIECE;
        rc = f->real->pMethods->xWrite(f->real, f->buf + i, (int)k, f->off + (sqlite3_int64)i);
    }
    return rc;
}

/* Whether buf ends with a complete commit frame. */
static bool ends_commit(const struct walbuf_file *f)
{
    sqlite3_int64 end = f->off + (sqlite3_int64)f->len;
    if (f->frame == 0 || end <= WAL_HDR || (end - WAL_HDR) % f->frame != 0) {
        return false;
    }
    sqlite3_int64 start = end - f->frame; /* the last frame's header */
    if (start < f->off) {
        return true; /* its header went past the buffer: pass on, to be safe */
    }
    return be32(f->buf + (start - f->off) + 4) != 0;
}

static int walbuf_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    if (off == 0 && n >= WAL_HDR) { /* the WAL header, at each start or restart of the WAL */
        uint32_t page = be32((const uint8_t *)data + 8);
        f->frame = page >= 512 && page <= 65536 ? FRAME_HDR + (sqlite3_int64)page : 0;
    }
    if (f->len > 0 && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)n > BUF_CAP)) {
        int rc = flush(f);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    if (f->frame == 0 || (size_t)n > PIECE || (!f->buf && !(f->buf = malloc(BUF_CAP)))) {
        int rc = flush(f); /* what came before goes first */
        return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, n, off);
    }
    if (f->len == 0) {
        f->off = off;
    }
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    return ends_commit(f) ? flush(f) : SQLITE_OK;
}

static int walbuf_close(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f);
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int walbuf_read(sqlite3_file *file, void *dst, int n, sqlite3_int64 off)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, dst, n, off);
}

static int walbuf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int walbuf_sync(sqlite3_file *file, int flags)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int walbuf_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int walbuf_lock(sqlite3_file *file, int level)
{
    sqlite3_file *r = ((struct walbuf_file *)file)->real;
    return r->pMethods->xLock(r, level);
}

static int walbuf_unlock(sqlite3_file *file, int level)
{
    sqlite3_file *r = ((struct walbuf_file *)file)->real;
    return r->pMethods->xUnlock(r, level);
}

static int walbuf_check_reserved(sqlite3_file *file, int *out)
{
    sqlite3_file *r = ((struct walbuf_file *)file)->real;
    return r->pMethods->xCheckReservedLock(r, out);
}

static int walbuf_file_control(sqlite3_file *file, int op, void *arg)
{
    struct walbuf_file *f = (struct walbuf_file *)file;
    int rc = flush(f); /* e.g. SQLITE_FCNTL_SIZE_HINT, which may extend the file */
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walbuf_sector_size(sqlite3_file *file)
{
    sqlite3_file *r = ((struct walbuf_file *)file)->real;
    return r->pMethods->xSectorSize(r);
}

static int walbuf_device(sqlite3_file *file)
{
    sqlite3_file *r = ((struct walbuf_file *)file)->real;
    return r->pMethods->xDeviceCharacteristics(r);
}

/* Version 1 methods: a WAL file has no shared memory and is never memory-mapped. */
static const sqlite3_io_methods walbuf_methods = {
    .iVersion = 1,
    .xClose = walbuf_close,
    .xRead = walbuf_read,
    .xWrite = walbuf_write,
    .xTruncate = walbuf_truncate,
    .xSync = walbuf_sync,
    .xFileSize = walbuf_file_size,
    .xLock = walbuf_lock,
    .xUnlock = walbuf_unlock,
    .xCheckReservedLock = walbuf_check_reserved,
    .xFileControl = walbuf_file_control,
    .xSectorSize = walbuf_sector_size,
    .xDeviceCharacteristics = walbuf_device,
};

static size_t real_offset(void)
{
    return (sizeof(struct walbuf_file) + 15) / 16 * 16;
}

static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                       int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL)) { /* the default VFS's file, in place */
        return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
    }
    struct walbuf_file *f = (struct walbuf_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((uint8_t *)file + real_offset());
    int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc == SQLITE_OK) {
        f->base.pMethods = &walbuf_methods;
    } else if (f->real->pMethods) { /* SQLite calls xClose only when pMethods is set */
        f->real->pMethods->xClose(f->real);
    }
    return rc;
}

/* The rest is the default VFS's, called with the default VFS (the unix VFS keeps its state in
 * its own pAppData). */
static int walbuf_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return base_vfs->xDelete(base_vfs, name, sync_dir);
}

static int walbuf_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int walbuf_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static void *walbuf_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return base_vfs->xDlOpen(base_vfs, name);
}

static void walbuf_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    base_vfs->xDlError(base_vfs, n, out);
}

static void (*walbuf_dl_sym(sqlite3_vfs *v, void *lib, const char *sym))(void)
{
    (void)v;
    return base_vfs->xDlSym(base_vfs, lib, sym);
}

static void walbuf_dl_close(sqlite3_vfs *v, void *lib)
{
    (void)v;
    base_vfs->xDlClose(base_vfs, lib);
}

static int walbuf_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xRandomness(base_vfs, n, out);
}

static int walbuf_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return base_vfs->xSleep(base_vfs, us);
}

static int walbuf_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return base_vfs->xCurrentTime(base_vfs, out);
}

static int walbuf_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xGetLastError ? base_vfs->xGetLastError(base_vfs, n, out) : 0;
}

static int walbuf_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return base_vfs->xCurrentTimeInt64(base_vfs, out);
}

static void register_once(void)
{
    base_vfs = sqlite3_vfs_find(NULL);
    if (!base_vfs || base_vfs->iVersion < 2 || !base_vfs->xCurrentTimeInt64) {
        return;
    }
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)real_offset() + base_vfs->szOsFile,
        .mxPathname = base_vfs->mxPathname,
        .zName = TRC__VFS_NAME,
        .xOpen = walbuf_open,
        .xDelete = walbuf_delete,
        .xAccess = walbuf_access,
        .xFullPathname = walbuf_full_pathname,
        .xDlOpen = base_vfs->xDlOpen ? walbuf_dl_open : NULL,
        .xDlError = base_vfs->xDlError ? walbuf_dl_error : NULL,
        .xDlSym = base_vfs->xDlSym ? walbuf_dl_sym : NULL,
        .xDlClose = base_vfs->xDlClose ? walbuf_dl_close : NULL,
        .xRandomness = walbuf_randomness,
        .xSleep = walbuf_sleep,
        .xCurrentTime = walbuf_current_time,
        .xGetLastError = walbuf_last_error,
        .xCurrentTimeInt64 = walbuf_current_time64,
    };
    registered = sqlite3_vfs_register(&walbuf_vfs, 0);
}

const char *trc__vfs_name(void)
{
    pthread_once(&once, register_once);
    return registered == SQLITE_OK ? TRC__VFS_NAME : NULL;
}

/*
 * bench_codec.c - single-thread benchmark of the tensor codec (tracer/trc_codec.c) on the
 * tensors of a real trace: reads every stored tensor, decodes it, then re-encodes all of them
 * with the version 1 encoder (one zstd frame, one block per byte plane, kept here as a
 * reference), with trc__codec_encode at the default level (one frame per plane, Raw frames for
 * random planes) and at level 3, and decodes the new blobs. Prints MB/s of raw tensor bytes
 * (best of 3 passes), the compressed/raw ratio and the share of bytes the encoder stored in Raw
 * frames; checks that every new blob decodes to its tensor. Not a test (no timing assertion).
 * Build by hand against a Release build of the tracer:
 *
 *   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-rel libtrc.a
 *   gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Itracer -Itracer/include \
 *       tests/bench/bench_codec.c build-rel/libtrc.a -lzstd -lsqlite3 -lm -o /tmp/bench_codec
 *   /tmp/bench_codec TRACE [max_tensors [modes]]
 *
 * modes: which encoders to run, a string of digits (default "012": v1, v2, v2 at level 3).
 *
 * (a trace to try: lltrace run -m MODEL.gguf -p "Once upon a time" -n 16 -o /tmp/p.trace)
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "trc_int.h"

#ifndef NDEC
#define NDEC 3 /* decode passes */
#endif

struct tens {
    uint8_t *raw;
    size_t n, width;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Loads and decodes up to max stored tensors; returns how many. */
static size_t load(const char *path, struct tens *t, size_t max)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT dtype, nbytes, data FROM tensors WHERE data IS NOT NULL", -1,
                           &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 0;
    }
    size_t k = 0;
    char msg[256];
    while (k < max && sqlite3_step(st) == SQLITE_ROW) {
        enum trc_dtype dt;
        if (trc__dtype_parse((const char *)sqlite3_column_text(st, 0), &dt) < 0) {
            continue;
        }
        size_t nb = (size_t)sqlite3_column_int64(st, 1);
        t[k].width = trc__dtype_size(dt);
        t[k].n = nb / t[k].width;
        t[k].raw = malloc(nb ? nb : 1);
        if (trc__codec_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                              t[k].raw, nb, t[k].width, msg, sizeof msg) < 0) {
            fprintf(stderr, "skipped a tensor: %s\n", msg);
            free(t[k].raw);
            continue;
        }
        k++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return k;
}

/* The version 1 encoder: one frame, each plane of a tensor of >= 1024 elements ends a block. */
static size_t encode_v1(ZSTD_CCtx *c, uint8_t *shuf, uint8_t *out, size_t cap, const struct tens *t)
{
    size_t nbytes = t->n * t->width;
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, -30);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, ZSTD_ps_enable);
    ZSTD_CCtx_setPledgedSrcSize(c, nbytes);
    trc__shuffle(shuf, t->raw, t->n, t->width);
    size_t planes = t->width > 1 && t->n >= 1024 ? t->width : 1;
    ZSTD_outBuffer ob = {out, cap, 0};
    for (size_t b = 0; b < planes; b++) {
        ZSTD_inBuffer ib = {shuf + b * (nbytes / planes), nbytes / planes, 0};
        while (ZSTD_compressStream2(c, &ob, &ib, b + 1 < planes ? ZSTD_e_flush : ZSTD_e_end)) {
        }
    }
    return ob.pos;
}

/* Bytes of a blob held in frames whose first block is Raw. */
static size_t raw_bytes(const uint8_t *p, size_t len)
{
    size_t raw = 0;
    while (len > 0) {
        size_t fsz = ZSTD_findFrameCompressedSize(p, len);
        size_t hsz = ZSTD_frameHeaderSize(p, len);
        if (ZSTD_isError(fsz) || ZSTD_isError(hsz)) {
            break;
        }
        raw += ((p[hsz] >> 1) & 3) == 0 ? fsz : 0;
        p += fsz;
        len -= fsz;
    }
    return raw;
}

/* Encodes every tensor 3 times (best time counts), keeps the blobs of the last pass, then
 * decodes them all (best of 3) and checks they give back the tensors. */
static void run(const char *name, int mode, struct tens *t, size_t nt, size_t total)
{
    struct trc__codec_scratch cs = {0};
    ZSTD_CCtx *c = ZSTD_createCCtx();
    size_t maxb = 0;
    for (size_t i = 0; i < nt; i++) {
        maxb = t[i].n * t[i].width > maxb ? t[i].n * t[i].width : maxb;
    }
    size_t cap = ZSTD_compressBound(maxb) + 4096;
    uint8_t *shuf = malloc(maxb + 1);
    uint8_t *out = malloc(cap);
    uint8_t *back = malloc(maxb + 1);
    uint8_t **blobs = calloc(nt, sizeof *blobs);
    size_t *lens = calloc(nt, sizeof *lens);
    double best = 1e30, best_dec = 1e30;
    size_t zsum = 0, rsum = 0;
    char msg[256];
    for (int pass = 0; pass < 3; pass++) {
        double el = 0;
        for (size_t i = 0; i < nt; i++) {
            const uint8_t *blob = out;
            size_t len = 0;
            double t0 = now();
            if (mode == 0) {
                len = encode_v1(c, shuf, out, cap, &t[i]);
            } else if (trc__codec_encode(&cs, mode == 1 ? 0 : 3, t[i].raw, t[i].n, t[i].width,
                                         &blob, &len, msg, sizeof msg) < 0) {
                fprintf(stderr, "encode failed: %s\n", msg);
                exit(1);
            }
            el += now() - t0;
            if (pass == 2) {
                blobs[i] = malloc(len);
                memcpy(blobs[i], blob, len);
                lens[i] = len;
                zsum += len;
                rsum += raw_bytes(blob, len);
            }
        }
        best = el < best ? el : best;
    }
    for (int pass = 0; pass < NDEC; pass++) {
        double t0 = now();
        for (size_t i = 0; i < nt; i++) {
            size_t nb = t[i].n * t[i].width;
            if (trc__codec_decode(blobs[i], lens[i], back, nb, t[i].width, msg, sizeof msg) < 0 ||
                (pass == 0 && memcmp(back, t[i].raw, nb) != 0)) {
                fprintf(stderr, "%s: tensor %zu does not decode back: %s\n", name, i, msg);
                exit(1);
            }
        }
        double el = now() - t0;
        best_dec = el < best_dec ? el : best_dec;
    }
    printf("%-34s encode %6.0f MB/s  ratio %.4f  raw frames %4.1f%%  decode %6.0f MB/s\n", name,
           (double)total / 1e6 / best, (double)zsum / (double)total,
           100.0 * (double)rsum / (double)zsum, (double)total / 1e6 / best_dec);
    for (size_t i = 0; i < nt; i++) {
        free(blobs[i]);
    }
    free(blobs);
    free(lens);
    trc__codec_scratch_release(&cs);
    ZSTD_freeCCtx(c);
    free(shuf);
    free(out);
    free(back);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_codec TRACE [max_tensors]\n");
        return 2;
    }
    size_t max = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1000000;
    struct tens *t = calloc(max, sizeof *t);
    size_t nt = load(argv[1], t, max);
    size_t total = 0;
    for (size_t i = 0; i < nt; i++) {
        total += t[i].n * t[i].width;
    }
    printf("%zu tensors, %.1f MB raw\n", nt, (double)total / 1e6);
    static const char *names[] = {"v1: one frame, block per plane",
                                  "v2: frame per plane, Raw if random", "v2 at zstd_level 3"};
    for (const char *m = argc > 3 ? argv[3] : "012"; *m; m++) {
        if (*m >= '0' && *m <= '2') {
            run(names[*m - '0'], *m - '0', t, nt, total);
        }
    }
    for (size_t i = 0; i < nt; i++) {
        free(t[i].raw);
    }
    free(t);
    return nt > 0 ? 0 : 1;
}

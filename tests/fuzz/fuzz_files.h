/*
 * fuzz_files.h - what the harnesses that damage a valid trace share (fuzz_trace.c, fuzz_cmds.c):
 * reading the valid file once, writing a copy with an input's byte changes, removing a trace's
 * files, and running an lltrace command with its output thrown away. Header-only (static
 * inline): each harness is one translation unit.
 */
#ifndef FUZZ_FILES_H
#define FUZZ_FILES_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole file at path (malloc'd) and its size; traps when it cannot be read. */
static inline uint8_t *fz_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) {
        __builtin_trap();
    }
    *size = (size_t)ftell(f);
    uint8_t *b = malloc(*size ? *size : 1);
    rewind(f);
    if (!b || fread(b, 1, *size, f) != *size) {
        __builtin_trap();
    }
    fclose(f);
    return b;
}

/* Removes path and the -journal, -wal and -shm files SQLite may have left beside it. */
static inline void fz_remove_trace(const char *path)
{
    static const char *const side[] = {"", "-journal", "-wal", "-shm"};
    char p[4300];
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s%s", path, side[k]);
        unlink(p);
    }
}

/* Writes image to path (after removing what an earlier input left there) with the input's
 * changes: 5-byte records, a 4-byte little-endian offset (modulo the size) and a byte to xor
 * in. Returns 0, or -1 when memory runs out. */
static inline int fz_write_changed(const char *path, const uint8_t *image, size_t size,
                                   const uint8_t *data, size_t n)
{
    uint8_t *img = malloc(size ? size : 1);
    if (!img) {
        return -1;
    }
    memcpy(img, image, size);
    for (size_t i = 0; size && i + 5 <= n; i += 5) {
        uint32_t off;
        memcpy(&off, data + i, 4);
        img[off % size] ^= data[i + 4];
    }
    fz_remove_trace(path); /* nothing of an earlier input may be read with this one */
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(img, 1, size, f) != size || fclose(f) != 0) {
        __builtin_trap();
    }
    free(img);
    return 0;
}

/* Runs an lltrace command with its output and messages thrown away (the C streams only: the
 * sanitizers and libFuzzer write to the file descriptors, so their reports still show). A
 * command returns an exit status, never a negative value. */
static inline int fz_command(int (*cmd)(int, char **), int argc, char **argv)
{
    static FILE *null;
    if (!null && !(null = fopen("/dev/null", "w"))) {
        __builtin_trap();
    }
    FILE *out = stdout, *err = stderr;
    stdout = stderr = null;
    optind = 0; /* getopt starts over */
    int rc = cmd(argc, argv);
    stdout = out;
    stderr = err;
    if (rc < 0) {
        __builtin_trap();
    }
    return rc;
}

#endif

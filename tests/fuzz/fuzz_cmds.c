/*
 * libFuzzer harness for the commands that take a trace apart with the engine's help: `lltrace
 * replay` (every op re-executed from its recorded inputs and parameters), `explain` (alone and
 * --vs the valid trace), `diff` (with its hints, which replay ops), `report` and `export`. At the
 * first input, `lltrace mkmodel` writes a tiny model and `lltrace run` records a real engine
 * trace of it (a prompt step and one decode step; layer 0 at level full, layer 1 at level
 * stats), rewritten with 512-byte pages so that changes reach the records. Each input is a list
 * of byte changes to that trace (4-byte little-endian offset modulo the size, then a byte to xor
 * in), as in fuzz_trace.c, which covers the reader and the commands that need no model. Every
 * command must return an exit status, whatever the trace holds: a changed parameter, shape,
 * tensor or token reaches the commands' own checks. Invariants that fail trap.
 * Run: ./fuzz_cmds CORPUS -max_total_time=60.
 */
#include <dirent.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "fuzz_files.h"
#include "lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_model[4096], g_base[4200], g_path[4200], g_out[4200], g_dir[4200];
static uint8_t *g_image;
static size_t g_size;

static void remove_files(void)
{
    fz_remove_trace(g_path);
    unlink(g_out);
}

/* export --all writes one file per tensor and an index into g_dir: removed after each input. */
static void empty_dir(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[4500];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(g_dir);
}

static void remove_all(void)
{
    remove_files();
    empty_dir();
    unlink(g_base);
    unlink(g_model);
}

/* The trace with 512-byte pages (VACUUM rewrites it), so that 5-byte changes land in records
 * and b-tree pages as often as in compressed data. */
static void small_pages(const char *path)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA page_size=512; VACUUM", NULL, NULL, NULL) != SQLITE_OK) {
        __builtin_trap();
    }
    sqlite3_close(db);
}

static void make_base(void)
{
    /* Files are made and removed at every input: in memory (/dev/shm) where there is one, since
     * ext4 spends longer finding an inode for each new file than the commands take. */
    const char *dir = getenv("TMPDIR");
    const char *tmp = dir && *dir ? dir : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int pid = (int)getpid();
    snprintf(g_model, sizeof g_model, "%s/lltrace-fuzz-cmds-%d.gguf", tmp, pid);
    snprintf(g_base, sizeof g_base, "%s/lltrace-fuzz-cmds-%d.trace", tmp, pid);
    snprintf(g_path, sizeof g_path, "%s.mut", g_base);
    snprintf(g_out, sizeof g_out, "%s.html", g_base);
    snprintf(g_dir, sizeof g_dir, "%s.npy", g_base);
    atexit(remove_all);
    struct lm_mkmodel_opts o = {.preset = "tiny", .type = LM_TYPE_F32, .seed = 7};
    char err[512];
    if (lm_mkmodel_write(g_model, &o, err, sizeof err) < 0) {
        __builtin_trap();
    }
    char *run[] = {"run", "-m",   g_model,   "-p",       "Once upon", "-n",       "2",
                   "-o",  g_base, "--force", "--record", "full",      "--record", "stats:blk.1.*",
                   "-t",  "1"};
    if (fz_command(cmd_run, (int)(sizeof run / sizeof run[0]), run) != 0) {
        __builtin_trap();
    }
    small_pages(g_base);
    g_image = fz_slurp(g_base, &g_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_image) {
        make_base();
    }
    remove_files();
    if (fz_write_changed(g_path, g_image, g_size, data, size) < 0) {
        return 0;
    }
    char *replay[] = {"replay", g_path, "--all"};
    char *replay1[] = {"replay", g_path, "blk.0.rope_q", "--step", "1", "--variant", "rope=neox"};
    char *explain[] = {"explain", g_path, "--top", "3", "--bars", "ascii"};
    char *vs[] = {"explain", g_path, "--vs", g_base, "--json"};
    char *diff[] = {"diff", g_base, g_path};
    char *report[] = {"report", g_base, g_path, "-o", g_out, "--force"};
    char *export[] = {"export", g_path, "--all", g_dir};
    char *chrome[] = {"export", g_path, "--chrome-trace", g_out};
    fz_command(cmd_replay, 3, replay);
    fz_command(cmd_replay, 7, replay1);
    fz_command(cmd_explain, 6, explain);
    fz_command(cmd_explain, 5, vs);
    fz_command(cmd_diff, 3, diff);
    fz_command(cmd_report, 6, report);
    unlink(g_out);
    fz_command(cmd_export, 4, export);
    empty_dir();
    fz_command(cmd_export, 4, chrome);
    return 0;
}

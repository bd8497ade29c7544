/*
 * Helpers shared by the Check suites: where the reference data and the built binary are, a
 * per-test scratch directory, and running the lltrace binary with captured output.
 */
#ifndef LT_TESTUTIL_H
#define LT_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ../shared directory (LLTRACE_SHARED) if it exists, else NULL. Borrowed, static. */
const char *lt_shared_dir(void);

/* Writes "<shared>/<rel>" into buf; returns buf, or NULL when ../shared is absent. */
char *lt_shared_path(char *buf, size_t cap, const char *rel);

/* A fresh scratch directory for this test name under LLTRACE_TMP (or /tmp). Returns buf. */
char *lt_tmp_dir(char *buf, size_t cap, const char *name);

/* dir/name in a scratch directory made (fresh) by the first call of the process with that dir.
 * Returns one of four static buffers, so a few results may be used together. */
const char *lt_tmp_path(const char *dir, const char *name);

/* The text of the first column of the first row of sql on db (a `sqlite3 *`): "NULL" for NULL,
 * "" when there is no row, "ERROR: <reason>" on failure. Returns a static buffer. */
const char *lt_sql1(void *db, const char *sql);

/* The lltrace binary (LLTRACE_BIN). Borrowed, static. */
const char *lt_bin(void);

/*
 * Runs `sh -c cmd`, capturing stdout and stderr into malloc'd strings (free with free()).
 * Returns the exit status (0..255), or -1 if the command could not be run.
 */
int lt_run(const char *cmd, char **out, char **err);

/* Reads a whole file into a malloc'd buffer (NUL-terminated); *len gets its size. NULL on error. */
char *lt_read_file(const char *path, size_t *len);

/* Writes len bytes to path. Returns 0 or -1. */
int lt_write_file(const char *path, const void *data, size_t len);

/* Opens a new trace for writing at path (overwritten), threaded or synchronous; check-asserts. */
struct trc_writer;
struct trc_writer *lt_writer_open(const char *path, bool sync);

/* Writes the generated "tiny" model (lm_mkmodel_write, f32) with this seed to path. */
void lt_make_tiny_model(const char *path, uint64_t seed);

/*
 * Records a greedy generation of n_predict tokens of prompt on model into the trace at path
 * (overwritten), with one fault injected when fault is not NULL ("rope=neox"). Check-asserts
 * success.
 */
void lt_record_trace(const char *model, const char *prompt, long n_predict, const char *fault,
                     const char *path);

/* One injected fault and what `lltrace diff correct faulty` must report about it. */
struct lt_fault_case {
    const char *fault, *first_op, *origin, *hint_key, *hint_text;
};
extern const struct lt_fault_case lt_fault_cases[];
extern const int lt_n_fault_cases;

/* Diffs clean against faulty and check-asserts the first divergence (op at step 0, origin) and
 * that one hint has fc's key and text. */
void lt_check_fault_diff(const char *clean, const char *faulty, const struct lt_fault_case *fc);

#endif

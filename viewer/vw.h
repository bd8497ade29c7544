/*
 * Small helpers shared by the lltrace commands: diagnostics in the house format
 * ("lltrace: <subject>: <reason>", lower-case, no final period, to stderr), and terminal checks.
 */
#ifndef VW_H
#define VW_H

#include <stdbool.h>
#include <stdio.h>

/* Prints "lltrace: " + formatted message + "\n" to stderr. Returns 1 (the runtime-failure exit
 * code) so commands can write `return vw_error(...)`. */
int vw_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "lltrace: warning: ..." to stderr. */
void vw_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "lltrace <cmd>: " + message and "try 'lltrace <cmd> --help'" to stderr; returns 2. */
int vw_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* strerror(e) in the house format: "no such file or directory". The text lives in a
 * thread-local buffer, valid until the thread's next call. */
const char *vw_strerror(int e);
/* `lltrace --version`: "lltrace 0.1.0 (git describe)" and a line on the build (compiler, build
 * type, SIMD path): what a bug report needs, as in the build fields of a trace's runs row. */
void vw_print_version(FILE *f);
/* True when the stream is a terminal (colors, progress bars, aligned tables). */
bool vw_isatty(FILE *f);

/* Strict number parsing for options: whole string, range-checked. Return 0 or -1. */
int vw_parse_i64(const char *s, long long lo, long long hi, long long *out);
int vw_parse_f64(const char *s, double *out);

#endif

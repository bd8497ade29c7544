/* Diagnostics and small parsing helpers shared by the lltrace commands (see vw.h). */
#include "vw.h"

#include "build_info.h"
#include "lm.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vw_error(const char *fmt, ...)
{
    va_list ap;
    fputs("lltrace: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

void vw_warn(const char *fmt, ...)
{
    va_list ap;
    fputs("lltrace: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int vw_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lltrace %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'lltrace %s --help'\n", cmd);
    return 2;
}

const char *vw_strerror(int e)
{
    static _Thread_local char buf[128];
    snprintf(buf, sizeof buf, "%s", strerror(e));
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z') {
        buf[0] = (char)(buf[0] - 'A' + 'a'); /* "No such file", not "I/O error" */
    }
    return buf;
}

void vw_print_version(FILE *f)
{
    fprintf(f, "lltrace %s (%s)\nbuilt with %s, %s, simd %s\n", LT_VERSION, LT_GIT_DESCRIBE,
            LT_COMPILER, LT_BUILD_TYPE[0] ? LT_BUILD_TYPE : "no build type", lm_simd_current());
}

bool vw_isatty(FILE *f)
{
    return isatty(fileno(f)) != 0;
}

int vw_parse_i64(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;
    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int vw_parse_f64(const char *s, double *out)
{
    char *end;
    double v;
    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || isnan(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Helpers shared by the Check suites; see testutil.h. Tests only: may abort on setup failures. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *lt_shared_dir(void)
{
    const char *d = getenv("LLTRACE_SHARED");
    struct stat st;
    if (!d || !*d) {
        d = "../shared";
    }
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NULL;
    }
    return d;
}

char *lt_shared_path(char *buf, size_t cap, const char *rel)
{
    const char *d = lt_shared_dir();
    if (!d) {
        return NULL;
    }
    snprintf(buf, cap, "%s/%s", d, rel);
    return buf;
}

char *lt_tmp_dir(char *buf, size_t cap, const char *name)
{
    const char *base = getenv("LLTRACE_TMP");
    char cmd[4096];
    if (!base || !*base) {
        base = "/tmp/lltrace-tests";
    }
    snprintf(buf, cap, "%s/%s.%d", base, name, (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", buf);
        abort();
    }
    return buf;
}

const char *lt_bin(void)
{
    const char *b = getenv("LLTRACE_BIN");
    return b && *b ? b : "lltrace";
}

char *lt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f) {
        return NULL;
    }
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len) {
        *len = n;
    }
    return buf;
}

int lt_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int lt_run(const char *cmd, char **out, char **err)
{
    char tmpl_o[] = "/tmp/lt_outXXXXXX", tmpl_e[] = "/tmp/lt_errXXXXXX";
    int fo = mkstemp(tmpl_o), fe = mkstemp(tmpl_e);
    char full[8192];
    int st;
    if (fo < 0 || fe < 0) {
        return -1;
    }
    close(fo);
    close(fe);
    snprintf(full, sizeof full, "(%s) >'%s' 2>'%s' </dev/null", cmd, tmpl_o, tmpl_e);
    st = system(full);
    if (out) {
        *out = lt_read_file(tmpl_o, NULL);
    }
    if (err) {
        *err = lt_read_file(tmpl_e, NULL);
    }
    unlink(tmpl_o);
    unlink(tmpl_e);
    if (st == -1) {
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Helpers shared by the Check suites; see testutil.h. Tests only: may abort on setup failures. */
#include "testutil.h"

#include <check.h>

#include "align_int.h"
#include "compare_int.h"
#include "hints_int.h"
#include "lm.h"
#include "run_int.h"
#include "trc.h"

#include <errno.h>
#include <sqlite3.h>
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

const char *lt_tmp_path(const char *dir, const char *name)
{
    static char d[1024], made_for[256], buf[4][1200];
    static int k;
    if (strcmp(made_for, dir) != 0) {
        lt_tmp_dir(d, sizeof d, dir);
        snprintf(made_for, sizeof made_for, "%s", dir);
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d, name);
    return buf[k];
}

const char *lt_sql1(void *db, const char *sql)
{
    static char out[4096];
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(out, sizeof out, "ERROR: %s", sqlite3_errmsg(db));
        return out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, sizeof out, "%s", s ? s : "NULL");
    } else if (rc != SQLITE_DONE) {
        snprintf(out, sizeof out, "ERROR: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return out;
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

trc_writer *lt_writer_open(const char *path, bool sync)
{
    trc_writer *w = NULL;
    char err[TRC_ERRBUF_SIZE];
    struct trc_writer_opts o = {.overwrite = true, .synchronous = sync};
    int rc = trc_writer_open(path, &o, &w, err, sizeof err);
    ck_assert_msg(rc == 0, "open %s: %s", path, err);
    return w;
}

void lt_make_tiny_model(const char *path, uint64_t seed)
{
    char err[256];
    struct lm_mkmodel_opts mo = {"tiny", LM_TYPE_F32, seed};
    ck_assert_msg(lm_mkmodel_write(path, &mo, err, sizeof err) == 0, "%s", err);
}

void lt_record_trace(const char *model, const char *prompt, long n_predict, const char *fault,
                     const char *path)
{
    struct vw_run_opts o;
    char err[256];
    vw_run_opts_init(&o);
    o.model = model;
    o.prompt = prompt;
    o.n_predict = n_predict;
    o.sampler.temp = 0;
    o.quiet = true;
    o.force = true;
    o.trace = path;
    if (fault) {
        ck_assert_msg(lm_faults_parse(&o.faults, fault, err, sizeof err) == 0, "%s", err);
    }
    ck_assert_int_eq(vw_run(&o, NULL), 0);
}

const struct lt_fault_case lt_fault_cases[] = {
    {"rope=neox", "blk.0.rope_q", "local", "rope-pairing", "with rope=norm reproduces"},
    {"rope-theta=500000", "blk.0.rope_q", "local", "rope-theta", "different cos/sin"},
    {"pos-offset=3", "blk.0.rope_q", "local", "rope-positions",
     "shifted: B rotates row p by position p+3"},
    {"bos=none", "tok_embd", "input tokens differ", "position-shift", "B[p] = A[p+1]"},
    {"bos=double", "tok_embd", "input tokens differ", "position-shift", "B[p] = A[p-1]"},
    {"rms-eps=1e-2", "blk.0.attn_norm", "local", "row-scale", "own factor"},
    {"gqa=tile", "blk.0.kq", "local", "gqa", "with gqa=group reproduces"},
    {"kv=f16", "blk.0.cache_k", "local", "f16-rounding", "rounded to f16"},
    {"softmax=f16", "blk.0.kq_softmax", "local", "softmax-f16", "softmax=f32 reproduces"},
    {"qk-permute", "blk.0.attn_q", "local", "qk-permute", "permutation within each head"},
};
const int lt_n_fault_cases = (int)(sizeof lt_fault_cases / sizeof lt_fault_cases[0]);

void lt_check_fault_diff(const char *clean, const char *faulty, const struct lt_fault_case *fc)
{
    struct vw_diff d;
    struct vw_hint h[VW_HINT_MAX];
    char err[512];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    ck_assert_msg(vw_diff_run(&d, clean, faulty, &tol, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(d.first_fail >= 0, "%s: no divergence", fc->fault);
    ck_assert_str_eq(d.ref.ops[d.first_fail].name, fc->first_op);
    ck_assert_int_eq(d.ref.ops[d.first_fail].step, 0);
    ck_assert_str_eq(vw_origin_name(d.origin), fc->origin);
    const int n = vw_hints_find(&d, h, VW_HINT_MAX);
    bool found = false;
    for (int i = 0; i < n; i++) {
        found = found || (strcmp(h[i].key, fc->hint_key) == 0 && strstr(h[i].text, fc->hint_text));
    }
    ck_assert_msg(found, "%s: no hint [%s] '%s' among %d (first: %s)", fc->fault, fc->hint_key,
                  fc->hint_text, n, n ? h[0].text : "-");
    vw_diff_release(&d);
}

/*
 * ref_diff: `diff correct faulty` on stories260K (../shared/models/stories260k-f32.v3.gguf, 5
 * layers, 8 heads, 4 KV heads), for every fault the engine can inject: the first divergence
 * names the op where the fault acts and whether it is local, and the hint names the fault.
 * Skipped (exit 77) when ../shared is absent.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align_int.h"
#include "compare_int.h"
#include "hints_int.h"
#include "lm.h"
#include "run_int.h"
#include "testutil.h"

static char dir[1024], model[1100], clean[1100];

static void make_trace(const char *path, const char *fault, int64_t n_predict)
{
    struct vw_run_opts o;
    char err[256];
    vw_run_opts_init(&o);
    o.model = model;
    o.prompt = "Once upon a time";
    o.n_predict = n_predict;
    o.sampler.temp = 0;
    o.quiet = true;
    o.force = true;
    o.trace = path;
    lm_faults_init(&o.faults);
    if (fault) {
        ck_assert_msg(lm_faults_parse(&o.faults, fault, err, sizeof err) == 0, "%s", err);
    }
    ck_assert_int_eq(vw_run(&o, NULL), 0);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(lt_shared_path(model, sizeof model, "models/stories260k-f32.v3.gguf"));
    lt_tmp_dir(dir, sizeof dir, "test_ref_diff");
    snprintf(clean, sizeof clean, "%s/clean.trace", dir);
    make_trace(clean, NULL, 4);
}

/* ---- faults ---------------------------------------------------------------------------------- */

struct fault_case {
    const char *fault, *first_op, *origin, *hint_key, *hint_text;
};

static const struct fault_case cases[] = {
    {"rope=neox", "blk.0.rope_q", "local", "rope-pairing", "with rope=norm reproduces"},
    {"rope-theta=500000", "blk.0.rope_q", "local", "rope-theta", "different cos/sin"},
    {"pos-offset=3", "blk.0.rope_q", "local", "rope-positions",
     "shifted: B rotates row p by "
     "position p+3"},
    {"bos=none", "tok_embd", "input tokens differ", "position-shift", "B[p] = A[p+1]"},
    {"bos=double", "tok_embd", "input tokens differ", "position-shift", "B[p] = A[p-1]"},
    {"rms-eps=1e-2", "blk.0.attn_norm", "local", "row-scale", "own factor"},
    {"gqa=tile", "blk.0.kq", "local", "gqa", "with gqa=group reproduces"},
    {"kv=f16", "blk.0.cache_k", "local", "f16-rounding", "rounded to f16"},
    {"softmax=f16", "blk.0.kq_softmax", "local", "softmax-f16", "softmax=f32 reproduces"},
    {"qk-permute", "blk.0.attn_q", "local", "qk-permute", "permutation within each head"},
};

START_TEST(test_ref_diff_fault_first_op_and_hint)
{
    const struct fault_case *fc = &cases[_i];
    struct vw_diff d;
    struct vw_hint h[VW_HINT_MAX];
    char err[512], path[1200];
    const struct vw_cmp_tol tol = {VW_CMP_ATOL, VW_CMP_RTOL};
    snprintf(path, sizeof path, "%s/fault%d.trace", dir, _i);
    make_trace(path, fc->fault, 4);
    ck_assert_msg(vw_diff_run(&d, clean, path, &tol, err, sizeof err) == 0, "%s", err);
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
END_TEST

Suite *ref_diff_suite(void);

Suite *ref_diff_suite(void)
{
    Suite *s = suite_create("ref_diff");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_add_loop_test(core, test_ref_diff_fault_first_op_and_hint, 0,
                        (int)(sizeof cases / sizeof cases[0]));
    suite_add_tcase(s, core);
    return s;
}

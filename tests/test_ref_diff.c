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

#define PROMPT "Once upon a time"

static char dir[1024], model[1100], clean[1100];

static void setup(void)
{
    ck_assert_ptr_nonnull(lt_shared_path(model, sizeof model, "models/stories260k-f32.v3.gguf"));
    lt_tmp_dir(dir, sizeof dir, "test_ref_diff");
    snprintf(clean, sizeof clean, "%s/clean.trace", dir);
    lt_record_trace(model, PROMPT, 4, NULL, clean);
}

/* ---- faults ---------------------------------------------------------------------------------- */

START_TEST(test_ref_diff_fault_first_op_and_hint)
{
    const struct lt_fault_case *fc = &lt_fault_cases[_i];
    char path[1200];
    snprintf(path, sizeof path, "%s/fault%d.trace", dir, _i);
    lt_record_trace(model, PROMPT, 4, fc->fault, path);
    lt_check_fault_diff(clean, path, fc);
}
END_TEST

Suite *ref_diff_suite(void);

Suite *ref_diff_suite(void)
{
    Suite *s = suite_create("ref_diff");
    TCase *core = tcase_create("core");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_add_loop_test(core, test_ref_diff_fault_first_op_and_hint, 0, lt_n_fault_cases);
    suite_add_tcase(s, core);
    return s;
}

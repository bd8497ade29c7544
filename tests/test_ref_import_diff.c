/*
 * The whole cross-engine path on real data: for each reference set in ../shared/refs, import
 * llama.cpp's eval-callback dump (lltrace import llamacpp), record the same prompt with our
 * engine (lltrace run), and diff the two. Every op both hold must agree within the print
 * precision (exit 0, "first divergence: none"), in the prompt step and in every decode step the
 * dump has, and the comparisons must be reported as partial (the dump printed only corners).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

struct set {
    const char *dir, *model, *prompt;
    int n_gen;
};

static const struct set sets[] = {
    {"stories260k-once", "models/stories260k-f32.v3.gguf", "Once upon a time", 8},
    {"stories260k-q8_0-once", "refs/stories260k-q8_0-once/stories260k-q8_0.gguf",
     "Once upon a time", 8},
    {"small-hello", "models/small.gguf", "hello world", 4},
    {"synth256-f32-hello", "models/synth256-f32.gguf", "hello world", 4},
    {"synth256-q8_0-hello", "refs/synth256-q8_0-hello/synth256-q8_0.gguf", "hello world", 4},
    {"synth256-q4_k_m-hello", "refs/synth256-q4_k_m-hello/synth256-q4_k_m.gguf", "hello world", 4},
};

START_TEST(test_ref_import_diff_agrees)
{
    const struct set *s = &sets[_i];
    char dir[1024], cmd[8192], line[128];
    char *out = NULL, *err = NULL;
    const char *sh = lt_shared_dir();
    lt_tmp_dir(dir, sizeof dir, s->dir);
    snprintf(cmd, sizeof cmd,
             "'%s' import llamacpp '%s/refs/%s/cb_eval.txt' -o '%s/ref.trace' -m '%s/%s' -p '%s'",
             lt_bin(), sh, s->dir, dir, sh, s->model, s->prompt);
    ck_assert_msg(lt_run(cmd, &out, &err) == 0, "import: %s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s/%s' -p '%s' -n %d --temp 0 -o '%s/mine.trace'",
             lt_bin(), sh, s->model, s->prompt, s->n_gen, dir);
    ck_assert_msg(lt_run(cmd, &out, &err) == 0, "run: %s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' diff --color never --steps '%s/ref.trace' '%s/mine.trace'",
             lt_bin(), dir, dir);
    int rc = lt_run(cmd, &out, &err);
    ck_assert_msg(rc == 0, "%s: diff exit %d\n%s%s", s->dir, rc, out, err);
    ck_assert_msg(strstr(out, "first divergence: none"), "%s", out);
    ck_assert_msg(strstr(out, " partial ("), "%s: no partial comparisons reported\n%s", s->dir,
                  out);
    for (int step = 0; step < s->n_gen; step++) { /* our run decodes n_gen - 1 tokens */
        snprintf(line, sizeof line, "step %3d pos", step);
        const char *at = strstr(out, line);
        ck_assert_msg(at, "%s: no step %d in the diff\n%s", s->dir, step, out);
        ck_assert_msg(strncmp(strstr(at, ":") + 1, "    0 ops", 9) != 0,
                      "%s step %d compared nothing: %.80s", s->dir, step, at);
    }
    free(out);
    free(err);
}
END_TEST

Suite *ref_import_diff_suite(void);

Suite *ref_import_diff_suite(void)
{
    Suite *su = suite_create("ref_import_diff");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_ref_import_diff_agrees, 0, (int)(sizeof sets / sizeof sets[0]));
    suite_add_tcase(su, tc);
    return su;
}

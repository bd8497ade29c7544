/*
 * `lltrace report` on a generated model (lm_mkmodel_write, preset tiny) with traces recorded by
 * the engine itself (vw_run): a good run, one with the RoPE pairing fault (rope=neox), one
 * whose prompt is hostile HTML, and one whose model file was deleted after recording. Checks
 * that the HTML holds the expected sections and the diff engine's and explain's own numbers,
 * that it is well-formed for the elements it emits (a tiny tag-balance checker below), that
 * text from traces is escaped, and the command's errors (existing output, usage, bad traces,
 * a model that does not match).
 */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align_int.h"
#include "lm.h"
#include "report_int.h"
#include "run_int.h"
#include "testutil.h"

#define HOSTILE "<script>alert(\"x\")</script> & 'q' </div>"

static char dir[1024], model[1100], model2[1100], gone[1100], good[1100], bad[1100], evil[1100],
    orphan[1100];

static void record_n(const char *m, const char *trace, const char *prompt, const char *fault,
                     int64_t n_predict)
{
    char err[256];
    struct vw_run_opts o;
    vw_run_opts_init(&o);
    o.model = m;
    o.prompt = prompt;
    o.n_predict = n_predict;
    o.quiet = true;
    o.trace = trace;
    o.force = true;
    o.sampler.temp = 0;
    if (fault) {
        ck_assert_msg(lm_faults_parse(&o.faults, fault, err, sizeof err) == 0, "%s", err);
    }
    ck_assert_int_eq(vw_run(&o, NULL), 0);
}

static void record(const char *m, const char *trace, const char *prompt, const char *fault)
{
    record_n(m, trace, prompt, fault, 4);
}

/* Runs once per TCase, in the parent process (unchecked fixture). */
static void setup(void)
{
    lt_tmp_dir(dir, sizeof dir, "test_report");
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    snprintf(model2, sizeof model2, "%s/tiny-seed9.gguf", dir);
    snprintf(gone, sizeof gone, "%s/gone.gguf", dir);
    snprintf(good, sizeof good, "%s/good.trace", dir);
    snprintf(bad, sizeof bad, "%s/bad.trace", dir);
    snprintf(evil, sizeof evil, "%s/evil.trace", dir);
    snprintf(orphan, sizeof orphan, "%s/orphan.trace", dir);
    lt_make_tiny_model(model, 0);
    lt_make_tiny_model(model2, 9);
    lt_make_tiny_model(gone, 0);
    record(model, good, "Once upon a time there was a", NULL);
    record(model, bad, "Once upon a time there was a", "rope=neox");
    record(model, evil, HOSTILE, NULL);
    record(gone, orphan, "Once upon a time there was a", NULL);
    ck_assert_int_eq(unlink(gone), 0);
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* Runs `lltrace report ARGS`; returns the exit status, output in *out / *err (freed by caller). */
static int cli(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int cli(char **out, char **err, const char *fmt, ...)
{
    char args[4096], cmd[6000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' report %s", dir, lt_bin(), args);
    int rc = lt_run(cmd, out, err);
    ck_assert_msg(rc >= 0, "cannot run %s", cmd);
    return rc;
}

/* Writes a report through the CLI into dir/<name> and returns its text (malloc'd). */
static char *report_file(const char *name, const char *args)
{
    char *out, *err, path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const int rc = cli(&out, &err, "%s -o '%s' --force", args, path);
    ck_assert_msg(rc == 0, "report %s: exit %d: %s", args, rc, err);
    free(out);
    free(err);
    size_t len;
    char *html = lt_read_file(path, &len);
    ck_assert_ptr_nonnull(html);
    ck_assert_uint_eq(strlen(html), len);
    return html;
}

/* Collects and renders a report in-process, returning the HTML (malloc'd); r stays collected. */
static char *report_mem(struct vw_report *r, const char *a, const char *b)
{
    char err[1024], *buf = NULL;
    size_t len = 0;
    struct vw_report_opts o = {a, b, NULL, -1, NULL, NULL};
    ck_assert_msg(vw_report_collect(r, &o, err, sizeof err) == 0, "%s", err);
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(vw_report_html(f, r), 0);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static void has(const char *html, const char *needle)
{
    ck_assert_msg(strstr(html, needle) != NULL, "the report lacks [%s]", needle);
}

static void lacks(const char *html, const char *needle)
{
    ck_assert_msg(strstr(html, needle) == NULL, "the report has [%s]", needle);
}

static void hasf(const char *html, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hasf(const char *html, const char *fmt, ...)
{
    char needle[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(needle, sizeof needle, fmt, ap);
    va_end(ap);
    has(html, needle);
}

/* ---- a tiny well-formedness checker ------------------------------------------------------------
 */

static bool is_void(const char *name)
{
    static const char *const v[] = {"meta", "br", "hr", "img", "input", "link", "wbr"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        if (strcmp(name, v[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Every '&' starts an entity ("&name;" or "&#123;"). */
static void check_entities(const char *html)
{
    for (const char *p = strchr(html, '&'); p; p = strchr(p + 1, '&')) {
        const char *q = p + 1 + (p[1] == '#');
        while (isalnum((unsigned char)*q)) {
            q++;
        }
        ck_assert_msg(*q == ';' && q > p + 1, "bare '&' at offset %ld: %.40s", (long)(p - html), p);
    }
}

/* Tags balance: each open tag (not void, not "/>") is closed by its own end tag, in order; no
 * tag is left open; attribute quotes pair up inside each tag. */
static void check_balanced(const char *html)
{
    char stack[256][16];
    int depth = 0;
    ck_assert_msg(strncmp(html, "<!DOCTYPE html>", 15) == 0, "no doctype");
    for (const char *p = strchr(html + 15, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        char name[16];
        int n = 0, quotes = 0;
        ck_assert_msg(end != NULL, "unterminated tag at offset %ld", (long)(p - html));
        const bool closing = p[1] == '/';
        for (const char *q = p + 1 + closing; isalnum((unsigned char)*q) && n < 15; q++) {
            name[n++] = (char)tolower((unsigned char)*q);
        }
        name[n] = 0;
        ck_assert_msg(n > 0, "'<' not starting a tag at offset %ld: %.40s", (long)(p - html), p);
        for (const char *q = p; q < end; q++) {
            quotes += *q == '"';
        }
        ck_assert_msg(quotes % 2 == 0, "unbalanced quotes in %.80s", p);
        if (closing) {
            ck_assert_msg(depth > 0 && strcmp(stack[depth - 1], name) == 0,
                          "</%s> closes <%s> at offset %ld", name, depth ? stack[depth - 1] : "",
                          (long)(p - html));
            depth--;
        } else if (end[-1] != '/' && !is_void(name)) {
            ck_assert_int_lt(depth, 256);
            snprintf(stack[depth++], sizeof stack[0], "%s", name);
        }
    }
    ck_assert_msg(depth == 0, "<%s> left open", depth ? stack[depth - 1] : "");
    check_entities(html);
}

/* ---- core -------------------------------------------------------------------------------------
 */

START_TEST(test_report_two_runs_sections)
{
    char *html = report_file("two.html", "good.trace bad.trace");
    check_balanced(html);
    has(html, "<title>lltrace report: good.trace vs bad.trace</title>");
    has(html, "A and B diverge. First divergence: step 0, layer 0, op <code>blk.0.rope_q</code>");
    has(html, "id=\"divergence\"");
    has(html, "id=\"heatmap\"");
    has(html, "id=\"steps\"");
    has(html, "id=\"residual\"");
    has(html, "id=\"timing\"");
    has(html, "id=\"nonfinite\"");
    has(html, "id=\"explain\"");
    has(html, "<span class=\"badge\">rope-pairing</span>");
    /* the settings that differ: rope_mode and faults, in the highlighted table */
    has(html, "<tr class=\"diff\"><td>rope_mode</td><td class=\"mono\">norm</td><td "
              "class=\"mono\">neox</td></tr>");
    has(html, "<tr class=\"diff\"><td>faults</td><td class=\"mono\">(none)</td><td "
              "class=\"mono\">rope=neox</td></tr>");
    has(html, "<span class=\"badge red\">local</span>");
    has(html, "Direct logit attribution");
    has(html, "Logit lens");
    has(html, "causal attention mask");
    lacks(html, "<script");
    free(html);
}
END_TEST

/* The numbers shown are the diff engine's and explain's own. */
START_TEST(test_report_numbers_from_the_engines)
{
    struct vw_report r;
    char *html = report_mem(&r, good, bad);
    check_balanced(html);
    ck_assert(r.have_diff && r.d.first_fail >= 0);
    const struct vw_opcmp *oc = &r.d.ops[r.d.first_fail].oc;
    hasf(html, "A = <b class=\"mono\">%.9g</b>, B = <b class=\"mono\">%.9g</b>",
         (double)oc->c.worst_b, (double)oc->c.worst_a);
    hasf(html, "%lld of %lld elements fail", (long long)oc->c.n_fail, (long long)oc->c.n);
    hasf(html, "%lld of %lld compared ops diverge", (long long)r.d.n_fail,
         (long long)r.d.n_compared);
    ck_assert(r.ex.available);
    for (int i = 0; i < 2; i++) {
        const struct vw_attr *a = &r.ex.attr[i];
        ck_assert_double_eq_tol(a->sum + a->residual, a->target, 1e-9);
        hasf(html, "<td class=\"n\">%.4g</td>", a->comp[0]);
        hasf(html, "<td class=\"n\">%.5g</td>", a->target);
    }
    /* the heatmap cell of the first divergence, with its tooltip */
    hasf(html, "<title>blk.0.rope_q (step 0): DIVERGES, NMSE %.3g", oc->c.nmse);
    /* residual RMS of the embedding at step 0, from the recorded stats */
    hasf(html, "step 0, after embedding: RMS %.6g</title>", r.run[0].rms[0]);
    ck_assert(!isnan(r.run[0].rms[0]) && r.run[0].rms[0] > 0);
    vw_report_release(&r);
    free(html);
}
END_TEST

START_TEST(test_report_one_run)
{
    char *html = report_file("one.html", "good.trace");
    check_balanced(html);
    has(html, "One recorded run of an LLM inference engine: <b>A</b>");
    lacks(html, "id=\"divergence\"");
    lacks(html, "id=\"heatmap\"");
    has(html, "Run A: RMS of the residual stream");
    has(html, "<polyline");
    has(html, "matmul");
    has(html, "No tensor of run A holds a NaN or an Inf");
    has(html, "Direct logit attribution");
    has(html, "<th>contribution</th>");
    free(html);
}
END_TEST

/* Text from a trace (the prompt, its token pieces) is escaped everywhere. */
START_TEST(test_report_escapes_trace_text)
{
    char *html = report_file("evil.html", "evil.trace good.trace");
    check_balanced(html);
    lacks(html, "<script");
    lacks(html, "alert(\"x\")");
    has(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; &lt;/div&gt;");
    free(html);
}
END_TEST

START_TEST(test_report_html_text_escaping)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    vw_html_text(f, "a<b>&\"'\x01\x7f|\xff|\xe2\x96\x81|\xc0\xaf|\xed\xa0\x80");
    vw_html_text(f, NULL);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_str_eq(buf, "a&lt;b&gt;&amp;&quot;&#39;\\x01\\x7f|\xef\xbf\xbd|\xe2\x96\x81|"
                          "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    free(buf);
}
END_TEST

START_TEST(test_report_model_missing_skips_explain)
{
    char *out, *err;
    char *html = report_file("orphan.html", "orphan.trace");
    check_balanced(html);
    has(html, "<p class=\"muted\">Not available: ");
    has(html, "gone.gguf");
    lacks(html, "Direct logit attribution");
    free(html);
    /* the same trace explained with the model passed explicitly (same bytes, same sha256) */
    html = report_file("orphan-m.html", "orphan.trace -m tiny.gguf");
    has(html, "Direct logit attribution");
    free(html);
    /* the warning on stderr */
    ck_assert_int_eq(cli(&out, &err, "orphan.trace -o - "), 0);
    ck_assert_ptr_nonnull(strstr(err, "lltrace: warning: explain section skipped"));
    ck_assert_ptr_nonnull(strstr(out, "</html>"));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_report_explain_step_and_token)
{
    char *html = report_file("step.html", "good.trace bad.trace --step 1 --token 5");
    has(html, "<p>Step 1, position ");
    has(html, " (id 5).</p>");
    free(html);
}
END_TEST

/* ---- errors -----------------------------------------------------------------------------------
 */

START_TEST(test_report_refuses_existing_output)
{
    char *out, *err;
    ck_assert_int_eq(cli(&out, &err, "good.trace -o exists.html"), 0);
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o exists.html"), 1);
    ck_assert_str_eq(err, "lltrace: exists.html: file exists (use --force to overwrite)\n");
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o exists.html --force"), 0);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_report_usage_errors)
{
    char *out, *err;
    ck_assert_int_eq(cli(&out, &err, "--help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: lltrace report A.trace [B.trace] -o REPORT.html"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "%s", ""), 2);
    ck_assert_ptr_nonnull(strstr(err, "missing A.trace"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace"), 2);
    ck_assert_ptr_nonnull(strstr(err, "missing -o REPORT.html"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "a b c -o x.html"), 2);
    ck_assert_ptr_nonnull(strstr(err, "too many arguments"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o x.html --step x"), 2);
    ck_assert_ptr_nonnull(strstr(err, "--step: 'x' is not a step number"));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_report_bad_inputs)
{
    char *out, *err, path[1200];
    snprintf(path, sizeof path, "%s/junk.trace", dir);
    ck_assert_int_eq(lt_write_file(path, "not a trace", 11), 0);
    ck_assert_int_eq(cli(&out, &err, "junk.trace -o j.html"), 1);
    ck_assert_msg(strncmp(err, "lltrace: junk.trace: ", 21) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/j.html", dir);
    ck_assert_int_eq(access(path, F_OK), -1);
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace junk.trace -o j.html"), 1);
    ck_assert_ptr_nonnull(strstr(err, "lltrace: junk.trace: "));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o j.html -m tiny-seed9.gguf"), 1);
    ck_assert_ptr_nonnull(strstr(err, "does not match the trace"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o j.html --step 99"), 1);
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o j.html --token no-such-piece-zz"), 1);
    ck_assert_ptr_nonnull(strstr(err, "no token 'no-such-piece-zz'"));
    free(out);
    free(err);
    ck_assert_int_eq(cli(&out, &err, "good.trace -o no-such-dir/x.html"), 1);
    ck_assert_ptr_nonnull(strstr(err, "lltrace: no-such-dir/x.html: cannot write"));
    free(out);
    free(err);
}
END_TEST

START_TEST(test_report_write_error)
{
    char *out, *err;
    if (access("/dev/full", W_OK) != 0) {
        return; /* no /dev/full here */
    }
    ck_assert_int_eq(cli(&out, &err, "good.trace -o /dev/full --force"), 1);
    ck_assert_str_eq(err, "lltrace: /dev/full: write error\n");
    ck_assert_int_eq(access("/dev/full", F_OK), 0);
    free(out);
    free(err);
}
END_TEST

/* Runs of more than 40 steps fold the per-step table after 32 rows. */
START_TEST(test_report_long_run_folds_steps)
{
    char a[1200], b[1200], args[2500];
    snprintf(a, sizeof a, "%s/long-a.trace", dir);
    snprintf(b, sizeof b, "%s/long-b.trace", dir);
    record_n(model, a, "Once upon a time", NULL, 44);
    record_n(model, b, "Once upon a time", "kv=f16", 44);
    snprintf(args, sizeof args, "'%s' '%s'", a, b);
    char *html = report_file("long.html", args);
    check_balanced(html);
    has(html, "<details><summary>12 more steps</summary>");
    free(html);
}
END_TEST

Suite *report_suite(void); /* called by check_main.c */

Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *core = tcase_create("core");
    TCase *errors = tcase_create("errors");
    tcase_add_unchecked_fixture(core, setup, NULL);
    tcase_add_unchecked_fixture(errors, setup, NULL);
    tcase_set_timeout(core, 300);
    tcase_set_timeout(errors, 300);
    tcase_add_test(core, test_report_two_runs_sections);
    tcase_add_test(core, test_report_numbers_from_the_engines);
    tcase_add_test(core, test_report_one_run);
    tcase_add_test(core, test_report_escapes_trace_text);
    tcase_add_test(core, test_report_html_text_escaping);
    tcase_add_test(core, test_report_model_missing_skips_explain);
    tcase_add_test(core, test_report_explain_step_and_token);
    tcase_add_test(errors, test_report_refuses_existing_output);
    tcase_add_test(errors, test_report_usage_errors);
    tcase_add_test(errors, test_report_bad_inputs);
    tcase_add_test(errors, test_report_write_error);
    tcase_add_test(core, test_report_long_run_folds_steps);
    suite_add_tcase(s, core);
    suite_add_tcase(s, errors);
    return s;
}

/*
 * report_html.c - renders a collected report (report_int.h) as one self-contained HTML page:
 * inline CSS, inline SVG charts with <title> tooltips, <details> to fold long parts; no script,
 * no external resource, so the file can be attached to a bug report and opened anywhere.
 *
 * Text that comes from a trace (prompts, token pieces, paths, op names, hints) is untrusted: it
 * goes through vw_html_text, always. The page is written top-down: a verdict, the runs, (with
 * B) the divergence, its hints, the layer x op heatmap and the per-step table, then the
 * residual-stream chart, op times, NaN/Inf ops and the explain section. Nothing here computes
 * a metric: numbers are formatted from the collected structs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_int.h"

/* ---- escaping and small writers ---------------------------------------------------------------
 */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80             ? 1
            : (s[0] & 0xE0) == 0xC0 ? 2
            : (s[0] & 0xF0) == 0xE0 ? 3
            : (s[0] & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 2 && s[0] < 0xC2) {
        return 0; /* overlong */
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
        (n == 4 &&
         ((s[0] == 0xF0 && s[1] < 0x90) || s[0] > 0xF4 || (s[0] == 0xF4 && s[1] >= 0x90)))) {
        return 0; /* overlong, surrogate, or beyond U+10FFFF */
    }
    return n;
}

/* Escapes n bytes of s (see vw_html_text). */
static void esc_n(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        const int k = utf8_len(p);
        if (k == 0 || p + k > end) {
            fputs("\xEF\xBF\xBD", f);
            p++;
        } else if (*p == '&' || *p == '<' || *p == '>' || *p == '"' || *p == '\'') {
            fputs(*p == '&'   ? "&amp;"
                  : *p == '<' ? "&lt;"
                  : *p == '>' ? "&gt;"
                  : *p == '"' ? "&quot;"
                              : "&#39;",
                  f);
            p++;
        } else if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7F) {
            fprintf(f, "\\x%02x", *p);
            p++;
        } else {
            fwrite(p, 1, (size_t)k, f);
            p += k;
        }
    }
}

void vw_html_text(FILE *f, const char *s)
{
    if (s) {
        esc_n(f, s, strlen(s));
    }
}

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* A token piece in a box: spaces (and SentencePiece's "▁") as a faint dot, the rest escaped. */
static void put_piece(FILE *f, const char *cls, const char *title, const char *piece)
{
    fprintf(f, "<span class=\"tok%s%s\"", cls ? " " : "", cls ? cls : "");
    if (title) {
        fputs(" title=\"", f);
        vw_html_text(f, title);
        fputc('"', f);
    }
    fputc('>', f);
    for (const char *p = piece ? piece : ""; *p;) {
        const size_t run = strcspn(p, " \xe2");
        esc_n(f, p, run);
        p += run;
        if (*p == ' ' || strncmp(p, SPACE_MARK, 3) == 0) {
            fputs("<span class=\"sp\">\xc2\xb7</span>", f);
            p += *p == ' ' ? 1 : 3;
        } else if (*p) {
            const size_t k =
                (size_t)(utf8_len((const unsigned char *)p) > 0 ? utf8_len((const unsigned char *)p)
                                                                : 1);
            esc_n(f, p, k);
            p += k;
        }
    }
    if (!piece || !*piece) {
        fputs("<span class=\"sp\">\xe2\x88\x85</span>", f); /* empty set: no text */
    }
    fputs("</span>", f);
}

/* A number as "%.*g", or "n/a". */
static const char *fnum(char *buf, size_t cap, double v, int digits)
{
    if (isnan(v)) {
        snprintf(buf, cap, "n/a");
    } else {
        snprintf(buf, cap, "%.*g", digits, v);
    }
    return buf;
}

/* A probability as a percentage ("52.10%", "3e-05%"), or "n/a". */
static const char *fpct(char *buf, size_t cap, double p)
{
    if (isnan(p)) {
        snprintf(buf, cap, "n/a");
    } else if (p >= 1e-4) {
        snprintf(buf, cap, "%.2f%%", p * 100);
    } else {
        snprintf(buf, cap, "%.0e%%", p * 100);
    }
    return buf;
}

/* Milliseconds from nanoseconds, or "n/a". */
static const char *fms(char *buf, size_t cap, int64_t ns)
{
    if (ns < 0) {
        snprintf(buf, cap, "n/a");
    } else {
        snprintf(buf, cap, "%.3f ms", (double)ns / 1e6);
    }
    return buf;
}

static const char *run_label(int i)
{
    return i == 0 ? "A" : "B";
}

/* The piece of token index idx of a trace, or NULL. */
static const char *trace_piece(const struct vw_trace *t, int64_t idx)
{
    return idx >= 0 && idx < t->n_tok ? t->tok_pieces[idx] : NULL;
}

/* The model's piece of a vocabulary id, or "?". */
static const char *model_piece(const struct vw_report *r, int32_t id)
{
    const char *p = id >= 0 && r->ex.m ? lm_tok_text(lm_model_tok(r->ex.m), id) : NULL;
    return p ? p : "?";
}

static void attr_summary(FILE *f, const struct vw_report *r);

/* ---- page frame -------------------------------------------------------------------------------
 */

static const char css[] =
    "*{box-sizing:border-box}"
    "body{font:14px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "color:#1d2330;background:#f3f4f7;margin:0}"
    "main{max-width:1200px;margin:0 auto;padding:20px 28px 40px}"
    "h1{font-size:24px;margin:4px 0 2px}h2{font-size:18px;margin:0 0 10px}"
    "h3{font-size:15px;margin:16px 0 6px}"
    "section{background:#fff;border:1px solid #e0e3ea;border-radius:8px;padding:14px 20px;"
    "margin:14px 0}"
    ".sub{color:#5b6475;margin:0 0 8px}.muted{color:#6b7385}.small{font-size:12px}"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}"
    "table.facts th{text-align:left;white-space:nowrap;background:none}"
    "th,td{padding:3px 9px;border-bottom:1px solid #eceef3;text-align:left;vertical-align:top}"
    "th{background:#f7f8fa;font-weight:600;color:#3a4254}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "tr.diff td{background:#fff3cd}tr.diff td:first-child{border-left:3px solid #e0a100}"
    "tr.bad td{background:#fdecea}tr.sum td{border-top:2px solid #c9ced8;font-weight:600}"
    "code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}"
    ".tok{display:inline-block;border:1px solid #cfd5df;border-radius:3px;padding:0 3px;"
    "margin:1px 1px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "font-size:12.5px;white-space:pre;background:#fff}"
    ".tok.p{background:#eceff4;color:#4a5160}.tok.x{border-color:#d7301f;background:#fde3df}"
    ".tok .sp{color:#a0a7b4}"
    ".verdict{border-left:6px solid #d7301f;background:#fff}"
    ".verdict.ok{border-left-color:#2e9e5b}.verdict p{margin:4px 0}"
    ".verdict .big{font-size:16px;font-weight:600}"
    ".badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;"
    "background:#e8ebf1;color:#3a4254;margin-right:4px}"
    ".badge.red{background:#fbd5cf;color:#8f1d10}.badge.yel{background:#ffe9a8;color:#6b4c00}"
    ".badge.grn{background:#d3f0de;color:#17633a}"
    "nav{font-size:13px}nav a{margin-right:14px;color:#2457a6;text-decoration:none}"
    ".row{display:flex;flex-wrap:wrap;gap:18px}.col{flex:1 1 520px;min-width:0}"
    "blockquote{margin:4px 0;padding:6px 12px;background:#f7f8fa;border-left:3px solid #c9ced8;"
    "white-space:pre-wrap;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "font-size:12.5px}"
    "details>summary{cursor:pointer;color:#2457a6;margin:6px 0}"
    "svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}"
    "ul.hints{margin:4px 0;padding-left:18px}ul.hints li{margin:3px 0}"
    "dl.glossary dt{font-weight:600;margin-top:6px}dl.glossary dd{margin:0 0 0 16px}";

static void page_head(FILE *f, const struct vw_report *r)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>lltrace report: ",
          f);
    vw_html_text(f, r->o.a);
    if (r->n_runs == 2) {
        fputs(" vs ", f);
        vw_html_text(f, r->o.b);
    }
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", css);
    fputs("<h1>lltrace report</h1>\n<p class=\"sub\">", f);
    if (r->n_runs == 2) {
        fputs("Two recorded runs of an LLM inference engine, compared op by op: <b>A</b> <code>",
              f);
        vw_html_text(f, r->o.a);
        fputs("</code> (the reference) and <b>B</b> <code>", f);
        vw_html_text(f, r->o.b);
        fputs("</code>.", f);
    } else {
        fputs("One recorded run of an LLM inference engine: <b>A</b> <code>", f);
        vw_html_text(f, r->o.a);
        fputs("</code>.", f);
    }
    fprintf(f,
            " Every number below was read from the trace file%s; the explain section also uses "
            "the model file the run%s recorded with.</p>\n",
            r->n_runs == 2 ? "s" : "", r->n_runs == 2 ? "s were" : " was");
}

static void page_nav(FILE *f, const struct vw_report *r)
{
    fputs("<nav>", f);
    fputs("<a href=\"#runs\">Runs</a>", f);
    if (r->n_runs == 2) {
        fputs("<a href=\"#divergence\">First divergence</a><a href=\"#heatmap\">Layer x op "
              "error</a><a href=\"#steps\">Per step</a>",
              f);
    }
    fputs("<a href=\"#residual\">Residual stream</a><a href=\"#timing\">Op time</a>"
          "<a href=\"#nonfinite\">NaN/Inf</a><a href=\"#explain\">Explain</a>"
          "<a href=\"#glossary\">Glossary</a></nav>\n",
          f);
}

/* ---- verdict ----------------------------------------------------------------------------------
 */

/* Where the token sequences part: in the prompt, or after which step with which tokens. */
static void verdict_tokens(FILE *f, const struct vw_report *r)
{
    const struct vw_rep_run *a = &r->run[0], *b = &r->run[1];
    const int64_t k = r->tokens_differ;
    if (k < 0) {
        fputs("<p>Both runs hold the same tokens.</p>", f);
        return;
    }
    for (int64_t i = 0; i < a->n_steps; i++) {
        if (a->steps[i].pos0 + a->steps[i].n_tokens == k && !a->t->tok_prompt[k]) {
            fprintf(f,
                    "<p>The generated tokens differ from index %lld on: after step %lld, A "
                    "sampled ",
                    (long long)k, (long long)a->steps[i].step);
            put_piece(f, NULL, NULL, trace_piece(a->t, k));
            fputs(" and B sampled ", f);
            put_piece(f, "x", NULL, trace_piece(b->t, k));
            fputs(".</p>", f);
            return;
        }
    }
    fprintf(f, "<p>The token sequences differ from index %lld on%s.</p>", (long long)k,
            k < a->t->n_tok && a->t->tok_prompt[k] ? " (in the prompt)" : "");
}

static void verdict_two(FILE *f, const struct vw_report *r)
{
    const struct vw_diff *d = &r->d;
    char b1[32];
    if (d->first_fail < 0) {
        fprintf(f,
                "<section class=\"verdict ok\"><p class=\"big\">A and B agree within tolerance "
                "(atol %g, rtol %g): %lld ops compared, %lld bit-identical.</p>",
                d->tol.atol, d->tol.rtol, (long long)d->n_compared, (long long)d->n_identical);
    } else {
        const struct vw_top *o = &d->ref.ops[d->first_fail];
        fprintf(f,
                "<section class=\"verdict\"><p class=\"big\">A and B diverge. First divergence: "
                "step %lld, ",
                (long long)o->step);
        if (o->layer >= 0) {
            fprintf(f, "layer %d, ", o->layer);
        }
        fputs("op <code>", f);
        vw_html_text(f, o->name);
        fprintf(f, "</code>, position %lld &mdash; %s.</p>",
                (long long)d->ops[d->first_fail].oc.fail_pos,
                d->origin == VW_ORIGIN_LOCAL ? "a local divergence: its inputs agree, its output "
                                               "does not"
                                             : vw_origin_name(d->origin));
        fprintf(f, "<p>%lld of %lld compared ops diverge (NMSE of that op %s).</p>",
                (long long)d->n_fail, (long long)d->n_compared,
                fnum(b1, sizeof b1, d->ops[d->first_fail].oc.c.nmse, 3));
    }
    if (d->n_partial > 0) {
        fprintf(f,
                "<p>%lld ops were compared partially (%lld on their statistics only: one trace "
                "holds no data for them).</p>",
                (long long)d->n_partial, (long long)d->n_stats_only);
    }
    if (r->n_hints > 0) {
        fputs("<p><b>Hint:</b> ", f);
        vw_html_text(f, r->hints[0].text);
        fputs("</p>", f);
    }
    verdict_tokens(f, r);
    if (r->ex.available) {
        attr_summary(f, r);
    }
    fputs("</section>\n", f);
}

static void verdict_one(FILE *f, const struct vw_report *r)
{
    const struct vw_rep_run *run = &r->run[0];
    int64_t n_prompt = 0;
    for (int64_t i = 0; i < run->t->n_tok; i++) {
        n_prompt += run->t->tok_prompt[i];
    }
    fprintf(f, "<section class=\"verdict%s\"><p class=\"big\">", run->n_nf_total ? "" : " ok");
    fprintf(f, "%lld prompt tokens + %lld generated, %lld steps, %lld ops recorded; run status ",
            (long long)n_prompt, (long long)(run->t->n_tok - n_prompt), (long long)run->n_steps,
            (long long)run->t->n_ops);
    vw_html_text(f, run->t->run.status ? run->t->run.status : "unknown");
    fputs(".</p>", f);
    if (run->n_nf_total) {
        fprintf(f,
                "<p>%lld op tensors hold NaN or Inf values: see <a href=\"#nonfinite\">NaN/Inf"
                "</a>.</p>",
                (long long)run->n_nf_total);
    } else {
        fputs("<p>No recorded tensor holds a NaN or an Inf.</p>", f);
    }
    fputs("</section>\n", f);
}

/* ---- the runs ---------------------------------------------------------------------------------
 */

/* The settings that differ (two runs), or every setting (folded). */
static void settings_table(FILE *f, const struct vw_report *r, bool only_diff)
{
    fputs("<table class=\"settings\"><tr><th>setting</th><th>A</th>", f);
    fputs(r->n_runs == 2 ? "<th>B</th></tr>\n" : "</tr>\n", f);
    for (int i = 0; i < r->n_set; i++) {
        const struct vw_rep_setting *s = &r->set[i];
        if (only_diff && !s->differs) {
            continue;
        }
        fputs(s->differs ? "<tr class=\"diff\"><td>" : "<tr><td>", f);
        vw_html_text(f, s->key);
        fputs("</td><td class=\"mono\">", f);
        vw_html_text(f, s->a);
        if (r->n_runs == 2) {
            fputs("</td><td class=\"mono\">", f);
            vw_html_text(f, s->b);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* One line of facts about a run (text, escaped by the caller). */
static void fact_text(const struct trc_run_info *ri, int row, char *buf, size_t cap)
{
    const char *sha = ri->model_sha256 ? ri->model_sha256 : "";
    switch (row) {
    case 0:
        snprintf(buf, cap, "%s", ri->model_path ? ri->model_path : "(not recorded)");
        break;
    case 1:
        snprintf(buf, cap, "%.16s%s", *sha ? sha : "(not recorded)", strlen(sha) > 16 ? "..." : "");
        break;
    case 2:
        snprintf(buf, cap,
                 "%s, %lld layers, n_embd %lld, %lld heads (%lld KV), head_dim %lld, "
                 "n_ff %lld, vocab %lld",
                 ri->arch ? ri->arch : "?", (long long)ri->n_layer, (long long)ri->n_embd,
                 (long long)ri->n_head, (long long)ri->n_head_kv, (long long)ri->head_dim,
                 (long long)ri->n_ff, (long long)ri->n_vocab);
        break;
    case 3:
        snprintf(buf, cap, "RoPE %s, theta %g, n_rot %lld; rms_eps %g; weights %s; KV cache %s",
                 ri->rope_mode ? ri->rope_mode : "?", ri->rope_theta, (long long)ri->n_rot,
                 ri->rms_eps, ri->weight_type ? ri->weight_type : "?",
                 ri->kv_type ? ri->kv_type : "?");
        break;
    case 4:
        snprintf(buf, cap, "%s", ri->faults && *ri->faults ? ri->faults : "none");
        break;
    case 5:
        if (ri->temp <= 0) {
            snprintf(buf, cap, "greedy (temp %g)", ri->temp);
        } else {
            snprintf(buf, cap, "temp %g, top_k %lld, top_p %g, seed %lld", ri->temp,
                     (long long)ri->top_k, ri->top_p, (long long)ri->seed);
        }
        break;
    default:
        snprintf(
            buf, cap, "%s (%s), %s, %s, SIMD %s, %lld threads",
            ri->build_version ? ri->build_version : "?", ri->build_commit ? ri->build_commit : "?",
            ri->build_compiler ? ri->build_compiler : "?", ri->build_flags ? ri->build_flags : "?",
            ri->simd ? ri->simd : "?", (long long)ri->n_threads);
        break;
    }
}

/* The runs' main facts side by side, rows that differ highlighted. */
static void facts_table(FILE *f, const struct vw_report *r)
{
    static const char *const rows[] = {"model",           "sha256",  "architecture", "numerics",
                                       "injected faults", "sampler", "build"};
    char a[600], b[600];
    fputs("<table class=\"facts\"><tr><th></th><th>A</th>", f);
    fputs(r->n_runs == 2 ? "<th>B</th></tr>\n" : "</tr>\n", f);
    for (int k = 0; k < (int)(sizeof rows / sizeof rows[0]); k++) {
        fact_text(&r->run[0].t->run, k, a, sizeof a);
        fact_text(&r->run[r->n_runs - 1].t->run, k, b, sizeof b);
        const bool differs = r->n_runs == 2 && strcmp(a, b) != 0;
        fprintf(f, "<tr%s><th>%s</th><td class=\"mono\">", differs ? " class=\"diff\"" : "",
                rows[k]);
        vw_html_text(f, a);
        if (r->n_runs == 2) {
            fputs("</td><td class=\"mono\">", f);
            vw_html_text(f, b);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* The tokens of a run as boxes: prompt tokens grey, those after the first difference red. */
static void token_strip(FILE *f, const struct vw_report *r, int i)
{
    const struct vw_rep_run *run = &r->run[i];
    const struct vw_trace *t = run->t;
    char title[160], b1[32], b2[32];
    fputs("<div class=\"tokens\">", f);
    for (int64_t k = 0; k < t->n_tok; k++) {
        const bool differs = r->tokens_differ >= 0 && k >= r->tokens_differ;
        if (t->tok_prompt[k]) {
            snprintf(title, sizeof title, "index %lld, id %d, prompt", (long long)k,
                     (int)t->tok_ids[k]);
        } else {
            snprintf(title, sizeof title,
                     "index %lld, id %d, sampled with probability %s, logit %s", (long long)k,
                     (int)t->tok_ids[k], fpct(b1, sizeof b1, run->tok_prob[k]),
                     fnum(b2, sizeof b2, run->tok_logit[k], 5));
        }
        put_piece(f, differs ? "x" : (t->tok_prompt[k] ? "p" : NULL), title, t->tok_pieces[k]);
    }
    fputs("</div>\n", f);
}

static void run_text(FILE *f, const struct vw_report *r, int i)
{
    const struct vw_trace *t = r->run[i].t;
    fprintf(f, "<h3>Run %s: <code>", run_label(i));
    vw_html_text(f, t->path);
    fputs("</code></h3>\n<p class=\"small muted\">Prompt as given:</p><blockquote>", f);
    vw_html_text(f, t->run.prompt ? t->run.prompt : "(not recorded)");
    fputs("</blockquote>\n", f);
    if (t->run.rendered_prompt && t->run.prompt && strcmp(t->run.rendered_prompt, t->run.prompt)) {
        fputs("<p class=\"small muted\">Prompt after the chat template:</p><blockquote>", f);
        vw_html_text(f, t->run.rendered_prompt);
        fputs("</blockquote>\n", f);
    }
    fputs("<p class=\"small muted\">Generated text:</p><blockquote>", f);
    for (int64_t k = 0; k < t->n_tok; k++) {
        if (!t->tok_prompt[k]) {
            vw_html_text(f, t->tok_pieces[k]);
        }
    }
    fprintf(f,
            "</blockquote>\n<p class=\"small muted\">Tokens (%lld; grey: prompt%s; hover for "
            "id and probability):</p>\n",
            (long long)t->n_tok,
            r->tokens_differ >= 0 ? ", red: from the first index where A and B differ" : "");
    token_strip(f, r, i);
}

static void section_runs(FILE *f, const struct vw_report *r)
{
    int n_diff = 0;
    for (int i = 0; i < r->n_set; i++) {
        n_diff += r->set[i].differs;
    }
    fputs("<section id=\"runs\"><h2>The run", f);
    fputs(r->n_runs == 2 ? "s</h2>\n" : "</h2>\n", f);
    if (r->n_runs == 2 && n_diff > 0) {
        fprintf(f, "<p><b>%d recorded setting%s differ%s between A and B:</b></p>\n", n_diff,
                n_diff == 1 ? "" : "s", n_diff == 1 ? "s" : "");
        settings_table(f, r, true);
    } else if (r->n_runs == 2) {
        fputs("<p><b>No recorded setting differs between A and B.</b></p>\n", f);
    }
    facts_table(f, r);
    fputs("<details><summary>All recorded settings</summary>\n", f);
    settings_table(f, r, false);
    fputs("</details>\n<div class=\"row\">", f);
    for (int i = 0; i < r->n_runs; i++) {
        fputs("<div class=\"col\">", f);
        run_text(f, r, i);
        fputs("</div>", f);
    }
    fputs("</div>\n</section>\n", f);
}

/* ---- first divergence -------------------------------------------------------------------------
 */

static void kv_row(FILE *f, const char *key, const char *value_html)
{
    fprintf(f, "<tr><th>%s</th><td>%s</td></tr>\n", key, value_html);
}

static void divergence_inputs(FILE *f, const struct vw_diff *d)
{
    char b1[32], b2[32];
    fputs("<tr><th>inputs</th><td>", f);
    for (int k = 0; k < d->n_inputs; k++) {
        const struct vw_diff_input *in = &d->inputs[k];
        fputs("<code>", f);
        vw_html_text(f, in->role);
        fputs("</code> ", f);
        if (!in->known) {
            fputs("<span class=\"badge\">not recorded in both</span>", f);
        } else if (in->oc.c.bitwise) {
            fputs("<span class=\"badge grn\">identical</span>", f);
        } else {
            fprintf(f, "<span class=\"badge %s\">%s</span> max |a-b| %s, NMSE %s",
                    vw_cmp_pass(&in->oc.c) ? "yel" : "red",
                    vw_cmp_pass(&in->oc.c) ? "within tolerance" : "differs",
                    fnum(b1, sizeof b1, in->oc.c.max_abs, 3),
                    fnum(b2, sizeof b2, in->oc.c.nmse, 3));
        }
        fputs("<br>", f);
    }
    fputs("</td></tr>\n", f);
}

static void divergence_table(FILE *f, const struct vw_diff *d)
{
    const struct vw_top *o = &d->ref.ops[d->first_fail];
    const struct vw_opcmp *oc = &d->ops[d->first_fail].oc;
    char v[512], within[64], b[6][32];
    fputs("<table>\n", f);
    snprintf(v, sizeof v, "%lld%s", (long long)o->step, o->step == 0 ? " (the prompt batch)" : "");
    kv_row(f, "step", v);
    snprintf(v, sizeof v, "%d", o->layer);
    kv_row(f, "layer", o->layer >= 0 ? v : "none");
    fputs("<tr><th>op</th><td><code>", f);
    vw_html_text(f, o->name);
    fputs("</code> (kind <code>", f);
    vw_html_text(f, o->kind);
    fputs("</code>)</td></tr>\n", f);
    snprintf(v, sizeof v, "%lld", (long long)oc->fail_pos);
    kv_row(f, "first failing position", v);
    vw_fmt_within(&d->ref, d->first_fail, oc->worst_within, within, sizeof within);
    fprintf(f, "<tr><th>worst element</th><td>position %lld <code>", (long long)oc->worst_pos);
    vw_html_text(f, within);
    fprintf(f,
            "</code>: A = <b class=\"mono\">%.9g</b>, B = <b class=\"mono\">%.9g</b></td></tr>\n",
            (double)oc->c.worst_b, (double)oc->c.worst_a);
    snprintf(v, sizeof v,
             "max |a-b| %s, max relative %s, NMSE %s, cosine %s, max ULP %lld; %lld of %lld "
             "elements fail",
             fnum(b[0], 32, oc->c.max_abs, 3), fnum(b[1], 32, oc->c.max_rel, 3),
             fnum(b[2], 32, oc->c.nmse, 3), fnum(b[3], 32, oc->c.cos, 9), (long long)oc->c.max_ulp,
             (long long)oc->c.n_fail, (long long)oc->c.n);
    kv_row(f, "error", v);
    snprintf(v, sizeof v, "<span class=\"badge %s\">%s</span> %s",
             d->origin == VW_ORIGIN_LOCAL ? "red" : "yel", vw_origin_name(d->origin),
             d->origin == VW_ORIGIN_LOCAL        ? "its inputs agree, its output does not: the op "
                                                   "itself computes differently"
             : d->origin == VW_ORIGIN_PROPAGATED ? "an input already differs"
                                                 : "");
    kv_row(f, "origin", v);
    if (d->n_inputs > 0) {
        divergence_inputs(f, d);
    }
    fputs("</table>\n", f);
    if (oc->partial) {
        fprintf(f,
                "<p class=\"muted\">Partial: only the elements both traces hold were compared "
                "(atol %g).</p>\n",
                oc->atol);
    }
}

static void section_divergence(FILE *f, const struct vw_report *r)
{
    const struct vw_diff *d = &r->d;
    fputs("<section id=\"divergence\"><h2>First divergence</h2>\n", f);
    fprintf(f,
            "<p>Every op of A is compared with B's rows at the same positions. An element "
            "fails when |a&minus;b| &gt; atol + rtol&middot;|b| (here atol %g, rtol %g). The "
            "first divergence is the earliest failing op in execution order.</p>\n",
            d->tol.atol, d->tol.rtol);
    if (d->first_fail < 0) {
        fputs("<p><span class=\"badge grn\">none</span> every op agrees within tolerance.", f);
        if (d->first_diff >= 0) {
            fputs(" First bitwise difference (within tolerance): <code>", f);
            vw_html_text(f, d->ref.ops[d->first_diff].name);
            fprintf(f, "</code> at step %lld.", (long long)d->ref.ops[d->first_diff].step);
        }
        fputs("</p>\n", f);
    } else {
        divergence_table(f, d);
    }
    fputs("<h3>Hints</h3>\n", f);
    if (r->n_hints == 0) {
        fputs("<p class=\"muted\">No known pattern matched.</p>\n", f);
    } else {
        fputs("<ul class=\"hints\">", f);
        for (int i = 0; i < r->n_hints; i++) {
            fputs("<li><span class=\"badge\">", f);
            vw_html_text(f, r->hints[i].key);
            fputs("</span> ", f);
            vw_html_text(f, r->hints[i].text);
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    }
    fputs("</section>\n", f);
}

/* ---- layer x op heatmap -----------------------------------------------------------------------
 */

static const char *const col_names[] = {
    "attn_norm", "attn_q", "attn_k",     "attn_v",  "rope_q",   "rope_k",  "cache_k",
    "cache_v",   "kq",     "kq_softmax", "kqv",     "attn_out", "ffn_inp", "ffn_norm",
    "ffn_gate",  "ffn_up", "ffn_act",    "ffn_out", "l_out"};
#define N_COLS ((int)(sizeof col_names / sizeof col_names[0]))
#define HX0    78.0 /* left margin of the heatmap (row labels) */

struct hcell {
    bool any, identical, fail;
    double nmse, max_abs;
    int64_t n_fail, n, op; /* op: the worst op (reference index) */
};

static int column_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (int c = 0; dot && c < N_COLS; c++) {
        if (strcmp(dot + 1, col_names[c]) == 0) {
            return c;
        }
    }
    return -1;
}

static void hcell_add(struct hcell *c, const struct vw_opdiff *od, int64_t op)
{
    if (!od->compared) {
        return;
    }
    if (!c->any) {
        c->identical = true;
        c->op = op;
    }
    c->any = true;
    c->identical = c->identical && od->oc.c.bitwise;
    c->fail = c->fail || od->fail;
    c->n_fail += od->oc.c.n_fail;
    c->n += od->oc.c.n;
    const double v = isnan(od->oc.c.nmse) ? (double)INFINITY : od->oc.c.nmse;
    if (v > c->nmse) {
        c->nmse = v;
        c->op = op;
    }
    c->max_abs = od->oc.c.max_abs > c->max_abs ? od->oc.c.max_abs : c->max_abs;
}

/* Fill color and label of a cell: identical green, within tolerance pale yellow, diverging
 * from orange (log10 NMSE <= -10) to dark red (>= 0). */
static void hcell_style(const struct hcell *c, char *fill, size_t cap, char *label, size_t lcap,
                        bool *dark)
{
    static const int stops[4][3] = {{254, 224, 139}, {253, 174, 97}, {215, 48, 39}, {120, 0, 20}};
    *dark = false;
    if (!c->any) {
        snprintf(fill, cap, "#f2f3f6");
        snprintf(label, lcap, "\xc2\xb7");
    } else if (c->identical) {
        snprintf(fill, cap, "#cdebd6");
        snprintf(label, lcap, "=");
    } else if (!c->fail) {
        snprintf(fill, cap, "#fbf5d6");
        snprintf(label, lcap, "%s", c->nmse > 0 ? "~" : "0");
    } else {
        const double lg = c->nmse > 0 && isfinite(c->nmse) ? log10(c->nmse) : 0;
        double t = (lg + 10) / 10 * 3;
        t = t < 0 ? 0 : t > 3 ? 3 : t;
        const int k = t >= 3 ? 2 : (int)t;
        const double u = t - k;
        int rgb[3];
        for (int j = 0; j < 3; j++) {
            rgb[j] = (int)lround(stops[k][j] + u * (stops[k + 1][j] - stops[k][j]));
        }
        snprintf(fill, cap, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
        if (isfinite(c->nmse) && c->nmse > 0) {
            snprintf(label, lcap, "%d", (int)floor(lg));
        } else {
            snprintf(label, lcap, "%s", isfinite(c->nmse) ? "~" : "inf");
        }
        *dark = t > 1.6;
    }
}

static void hcell_svg(FILE *f, const struct vw_report *r, const struct hcell *c, double x, double y,
                      const char *what)
{
    char fill[16], label[16], b1[32], b2[32];
    bool dark;
    hcell_style(c, fill, sizeof fill, label, sizeof label, &dark);
    fprintf(f,
            "<g><rect x=\"%.1f\" y=\"%.1f\" width=\"38\" height=\"22\" rx=\"2\" fill=\"%s\" "
            "stroke=\"#fff\"/><title>",
            x, y, fill);
    if (!c->any) {
        vw_html_text(f, what);
        fputs(": not compared", f);
    } else {
        vw_html_text(f, r->d.ref.ops[c->op].name);
        fprintf(f, " (step %lld): %s, NMSE %s, max |a-b| %s, %lld of %lld elements fail",
                (long long)r->d.ref.ops[c->op].step,
                c->identical ? "bit-identical"
                : c->fail    ? "DIVERGES"
                             : "within tolerance",
                fnum(b1, sizeof b1, c->nmse, 3), fnum(b2, sizeof b2, c->max_abs, 3),
                (long long)c->n_fail, (long long)c->n);
    }
    fprintf(f,
            "</title><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" "
            "fill=\"%s\">%s</text></g>\n",
            x + 19, y + 15, dark ? "#fff" : "#333", label);
}

/* Cells: n_layer rows of N_COLS, then tok_embd, output_norm, output. The step of the first
 * divergence tells most (later steps inherit everything); with none, the worst over all. */
static struct hcell *heat_cells(const struct vw_report *r, int64_t n_layer, int64_t *step)
{
    const struct vw_diff *d = &r->d;
    struct hcell *cells = calloc((size_t)(n_layer * N_COLS + 3), sizeof *cells);
    *step = d->first_fail >= 0 ? d->ref.ops[d->first_fail].step : -1;
    for (int64_t i = 0; cells && i < d->ref.n_ops; i++) {
        const struct vw_top *o = &d->ref.ops[i];
        const int c = column_of(o->name);
        if (*step >= 0 && o->step != *step) {
            continue;
        }
        if (o->layer >= 0 && o->layer < n_layer && c >= 0) {
            hcell_add(&cells[o->layer * N_COLS + c], &d->ops[i], i);
        } else if (o->layer < 0) {
            const int k = !strcmp(o->name, "tok_embd")      ? 0
                          : !strcmp(o->name, "output_norm") ? 1
                                                            : 2;
            hcell_add(&cells[n_layer * N_COLS + k], &d->ops[i], i);
        }
    }
    return cells;
}

static void heat_legend(FILE *f, double y)
{
    static const char *const labels[] = {"identical", "within tolerance", "diverges: NMSE 1e-10",
                                         "1e-5", "1 or more"};
    static const struct hcell ex[] = {{true, true, false, 0, 0, 0, 0, 0},
                                      {true, false, false, 1e-12, 0, 0, 0, 0},
                                      {true, false, true, 1e-10, 0, 0, 0, 0},
                                      {true, false, true, 1e-5, 0, 0, 0, 0},
                                      {true, false, true, 1, 0, 0, 0, 0}};
    double x = HX0;
    for (int i = 0; i < 5; i++) {
        char fill[16], label[16];
        bool dark;
        hcell_style(&ex[i], fill, sizeof fill, label, sizeof label, &dark);
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"#444\">%s</text>\n",
                x, y, fill, x + 18, y + 11, labels[i]);
        x += 40 + 6.2 * (double)strlen(labels[i]);
    }
}

/* The row of the ops outside the layers (cells: tok_embd, output_norm, output) at height y. */
static void heat_others(FILE *f, const struct vw_report *r, const struct hcell *cells, double y)
{
    static const char *const other[3] = {"tok_embd", "output_norm", "output"};
    for (int k = 0; k < 3; k++) {
        const double x = HX0 + 40.0 * (k * 5);
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" font-size=\"11\" "
                "fill=\"#333\">%s</text>\n",
                x + (k ? 76 : -8), y + 15, other[k]);
        hcell_svg(f, r, &cells[k], x + (k ? 84 : 0), y, other[k]);
    }
}

static void section_heatmap(FILE *f, const struct vw_report *r)
{
    const int64_t n_layer = r->run[0].n_layer;
    int64_t step;
    struct hcell *cells = heat_cells(r, n_layer, &step);
    fputs("<section id=\"heatmap\"><h2>Error per layer and op</h2>\n", f);
    if (!cells) {
        fputs("<p>out of memory</p></section>\n", f);
        return;
    }
    if (step >= 0) {
        fprintf(f, "<p>At step %lld, the step of the first divergence. ", (long long)step);
    } else {
        fputs("<p>The worst over all steps. ", f);
    }
    fputs("Each cell is one op of one layer; the number is log10 of its NMSE (normalized mean "
          "squared error, sum (a&minus;b)&sup2; / sum b&sup2;): &minus;1 means the error is a "
          "tenth of the signal. Hover a cell for details.</p>\n",
          f);
    const double w = HX0 + 40.0 * N_COLS + 40, h = 70 + 24.0 * (double)(n_layer + 1) + 30;
    fprintf(f,
            "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"error per layer and op\">\n",
            w, h, w, h);
    for (int c = 0; c < N_COLS; c++) {
        fprintf(f,
                "<text transform=\"translate(%.0f,62) rotate(-45)\" font-size=\"11\" "
                "fill=\"#333\">%s</text>\n",
                HX0 + 40.0 * c + 14, col_names[c]);
    }
    for (int64_t l = 0; l < n_layer; l++) {
        const double y = 70 + 24.0 * (double)l;
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" font-size=\"11\" "
                "fill=\"#333\">layer %lld</text>\n",
                HX0 - 8, y + 15, (long long)l);
        for (int c = 0; c < N_COLS; c++) {
            hcell_svg(f, r, &cells[l * N_COLS + c], HX0 + 40.0 * c, y, col_names[c]);
        }
    }
    heat_others(f, r, cells + n_layer * N_COLS, 70 + 24.0 * (double)n_layer + 4);
    heat_legend(f, 70 + 24.0 * (double)n_layer + 36);
    fputs("</svg>\n</section>\n", f);
    free(cells);
}

/* ---- per-step summary -------------------------------------------------------------------------
 */

struct step_sum {
    int64_t step, n_ops, n_identical, n_fail, first_fail;
    double nmse;
};

static struct step_sum *step_sums(const struct vw_diff *d, int64_t *n)
{
    struct step_sum *s = calloc((size_t)(d->ref.n_ops + 1), sizeof *s);
    *n = 0;
    for (int64_t i = 0; s && i < d->ref.n_ops; i++) {
        const struct vw_top *o = &d->ref.ops[i];
        const struct vw_opdiff *od = &d->ops[i];
        if (*n == 0 || s[*n - 1].step != o->step) {
            s[(*n)++] = (struct step_sum){o->step, 0, 0, 0, -1, 0.0};
        }
        struct step_sum *x = &s[*n - 1];
        x->n_ops += od->compared;
        x->n_identical += od->compared && od->oc.c.bitwise;
        x->n_fail += od->fail;
        x->first_fail = od->fail && x->first_fail < 0 ? i : x->first_fail;
        x->nmse = od->compared && od->oc.c.nmse > x->nmse ? od->oc.c.nmse : x->nmse;
    }
    return s;
}

/* The token a run sampled after step `step` as a box, or a dash. */
static void sampled_cell(FILE *f, const struct vw_rep_run *run, int64_t step, bool differs)
{
    for (int64_t i = 0; i < run->n_steps; i++) {
        const struct vw_rep_step *s = &run->steps[i];
        if (s->step == step && s->next_id >= 0) {
            put_piece(f, differs ? "x" : NULL, NULL, trace_piece(run->t, s->pos0 + s->n_tokens));
            return;
        }
    }
    fputs("&ndash;", f);
}

static int32_t sampled_id(const struct vw_rep_run *run, int64_t step)
{
    for (int64_t i = 0; i < run->n_steps; i++) {
        if (run->steps[i].step == step) {
            return run->steps[i].next_id;
        }
    }
    return -1;
}

static const char steps_head[] =
    "<table><tr><th class=\"n\">step</th><th>A sampled</th><th>B sampled</th>"
    "<th class=\"n\">ops compared</th><th class=\"n\">identical</th><th class=\"n\">"
    "diverge</th><th class=\"n\">max NMSE</th><th>first diverging op</th></tr>\n";

static void step_row(FILE *f, const struct vw_report *r, const struct step_sum *s)
{
    char b1[32];
    const bool differs = sampled_id(&r->run[0], s->step) != sampled_id(&r->run[1], s->step);
    fprintf(f, "<tr%s><td class=\"n\">%lld</td><td>", s->n_fail ? " class=\"bad\"" : "",
            (long long)s->step);
    sampled_cell(f, &r->run[0], s->step, false);
    fputs("</td><td>", f);
    sampled_cell(f, &r->run[1], s->step, differs);
    fprintf(f,
            "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld"
            "</td><td class=\"n\">%s</td><td><code>",
            (long long)s->n_ops, (long long)s->n_identical, (long long)s->n_fail,
            fnum(b1, sizeof b1, s->nmse, 3));
    if (s->first_fail >= 0) {
        vw_html_text(f, r->d.ref.ops[s->first_fail].name);
    }
    fputs("</code></td></tr>\n", f);
}

#define STEPS_SHOWN 32 /* longer tables fold the rest into a <details> */

static void section_steps(FILE *f, const struct vw_report *r)
{
    int64_t n;
    struct step_sum *s = step_sums(&r->d, &n);
    fputs("<section id=\"steps\"><h2>Per step</h2>\n<p>Step 0 processes the prompt; each later "
          "step decodes one token. The sampled token is the one chosen after the step; rows "
          "with diverging ops are tinted.</p>\n",
          f);
    fputs(steps_head, f);
    const bool fold = n > STEPS_SHOWN + 8;
    for (int64_t k = 0; s && k < n; k++) {
        if (fold && k == STEPS_SHOWN) {
            fprintf(f, "</table>\n<details><summary>%lld more steps</summary>\n%s",
                    (long long)(n - k), steps_head);
        }
        step_row(f, r, &s[k]);
    }
    fputs(fold ? "</table>\n</details>\n" : "</table>\n", f);
    fprintf(f,
            "<p class=\"muted\">%lld ops compared: %lld identical, %lld within tolerance, %lld "
            "diverge; %lld only in A, %lld only in B.</p>\n</section>\n",
            (long long)r->d.n_compared, (long long)r->d.n_identical,
            (long long)(r->d.n_compared - r->d.n_identical - r->d.n_fail), (long long)r->d.n_fail,
            (long long)r->d.n_ref_only, (long long)r->d.n_cand_only);
    free(s);
}

/* ---- residual stream chart --------------------------------------------------------------------
 */

/* Color of step k of n (a blue-to-orange ramp: early steps blue). */
static void step_color(int64_t k, int64_t n, char *buf, size_t cap)
{
    static const int a[3] = {38, 84, 160}, b[3] = {230, 120, 30};
    const double t = n > 1 ? (double)k / (double)(n - 1) : 0;
    snprintf(buf, cap, "#%02x%02x%02x", (int)lround(a[0] + t * (b[0] - a[0])),
             (int)lround(a[1] + t * (b[1] - a[1])), (int)lround(a[2] + t * (b[2] - a[2])));
}

static const char *point_name(int64_t p, char *buf, size_t cap)
{
    if (p == 0) {
        snprintf(buf, cap, "embedding");
    } else {
        snprintf(buf, cap, "layer %lld %s", (long long)((p - 1) / 2), p % 2 ? "attention" : "ffn");
    }
    return buf;
}

/* A "nice" tick step for an axis from 0 to v in about four steps (1, 2, 2.5 or 5 times a
 * power of ten); the axis then ends at the first multiple of it >= v. */
static double nice_step(double v)
{
    if (!(v > 0) || !isfinite(v)) {
        return 0.25;
    }
    const double raw = v / 4, p = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++) {
        if (m[i] * p >= raw) {
            return m[i] * p;
        }
    }
    return 10 * p;
}

/* Plot frame: y ticks (0..ymax) and x labels of the residual points. */
static void rms_axes(FILE *f, const struct vw_rep_run *run, double x0, double y0, double pw,
                     double ph, double ymax, double step)
{
    char name[48];
    const int n_ticks = (int)lround(ymax / step);
    for (int k = 0; k <= n_ticks; k++) {
        const double y = y0 + ph - ph * k / n_ticks;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ec\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\" "
                "fill=\"#555\">%g</text>\n",
                x0, y, x0 + pw, y, x0 - 4, y + 3, step * k);
    }
    const int64_t every = run->n_points > 24 ? 4 : run->n_points > 12 ? 2 : 1;
    for (int64_t p = 0; p < run->n_points; p++) {
        const double x = x0 + pw * (double)p / (double)(run->n_points > 1 ? run->n_points - 1 : 1);
        if (p % every == 0 || p == run->n_points - 1) {
            snprintf(name, sizeof name, p == 0 ? "emb" : "%lld%s", (long long)((p - 1) / 2),
                     p % 2 ? "a" : "f");
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" "
                    "fill=\"#555\">%s</text>\n",
                    x, y0 + ph + 14, name);
        }
    }
}

/* One polyline per step; points with a tooltip. */
static void rms_lines(FILE *f, const struct vw_rep_run *run, double x0, double y0, double pw,
                      double ph, double ymax)
{
    char color[16], name[48], b1[32];
    for (int64_t s = 0; s < run->n_steps; s++) {
        const double *v = run->rms + s * run->n_points;
        step_color(s, run->n_steps, color, sizeof color);
        fprintf(f,
                "<g><title>step %lld</title><polyline fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"%s\" stroke-opacity=\"0.85\" points=\"",
                (long long)run->steps[s].step, color, s == 0 ? "2.6" : "1.3");
        for (int64_t p = 0; p < run->n_points; p++) {
            if (!isnan(v[p])) {
                fprintf(f, "%.1f,%.1f ", x0 + pw * (double)p / (double)(run->n_points - 1),
                        y0 + ph - ph * v[p] / ymax);
            }
        }
        fputs("\"/></g>\n", f);
        for (int64_t p = 0; p < run->n_points; p++) {
            if (!isnan(v[p])) {
                fprintf(f,
                        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"><title>step %lld, "
                        "after %s: RMS %s</title></circle>\n",
                        x0 + pw * (double)p / (double)(run->n_points - 1),
                        y0 + ph - ph * v[p] / ymax, color, (long long)run->steps[s].step,
                        point_name(p, name, sizeof name), fnum(b1, sizeof b1, v[p], 6));
            }
        }
    }
}

static void rms_chart(FILE *f, const struct vw_rep_run *run, const char *label, double vmax)
{
    const double step = nice_step(vmax), ymax = step * ceil(vmax / step - 1e-9);
    const double W = 560, H = 270, x0 = 46, y0 = 28, pw = W - x0 - 16, ph = H - y0 - 52;
    char c0[16], c1[16];
    fprintf(f,
            "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"residual RMS of run %s\">\n",
            W, H, W, H, label);
    fprintf(f,
            "<text x=\"%.0f\" y=\"16\" font-size=\"13\" font-weight=\"600\" fill=\"#222\">Run "
            "%s: RMS of the residual stream</text>\n",
            x0, label);
    rms_axes(f, run, x0, y0, pw, ph, ymax, step);
    if (run->n_points > 1) {
        rms_lines(f, run, x0, y0, pw, ph, ymax);
    }
    step_color(0, run->n_steps, c0, sizeof c0);
    step_color(run->n_steps - 1, run->n_steps, c1, sizeof c1);
    fprintf(f,
            "<defs><linearGradient id=\"g%s\"><stop offset=\"0\" stop-color=\"%s\"/><stop "
            "offset=\"1\" stop-color=\"%s\"/></linearGradient></defs>"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"120\" height=\"8\" fill=\"url(#g%s)\"/>"
            "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" fill=\"#555\">step 0 (prompt, thick) "
            "&#8594; step %lld</text>\n",
            label, c0, c1, x0, H - 18, label, x0 + 128, H - 10,
            (long long)(run->n_steps ? run->steps[run->n_steps - 1].step : 0));
    fputs("</svg>\n", f);
}

static void section_residual(FILE *f, const struct vw_report *r)
{
    double vmax = 0;
    for (int i = 0; i < r->n_runs; i++) {
        for (int64_t k = 0; k < r->run[i].n_steps * r->run[i].n_points; k++) {
            vmax = !isnan(r->run[i].rms[k]) && r->run[i].rms[k] > vmax ? r->run[i].rms[k] : vmax;
        }
    }
    fputs("<section id=\"residual\"><h2>Residual stream</h2>\n<p>The RMS (root mean square) of "
          "the residual stream after the embedding (emb) and after each layer's attention (a, "
          "op <code>blk.L.ffn_inp</code>) and FFN (f, op <code>blk.L.l_out</code>), one line per "
          "step, from the recorded tensor statistics (over all of a step's rows). A run that "
          "goes wrong often shows a jump here.</p>\n<div class=\"row\">",
          f);
    if (vmax == 0) {
        fputs("<p class=\"muted\">The traces hold no residual-stream statistics.</p>", f);
    }
    for (int i = 0; vmax > 0 && i < r->n_runs; i++) {
        fputs("<div class=\"col\">", f);
        rms_chart(f, &r->run[i], run_label(i), vmax);
        fputs("</div>", f);
    }
    fputs("</div>\n</section>\n", f);
}

/* ---- op time ----------------------------------------------------------------------------------
 */

/* Time of kind `kind` in a run, -1 when absent. */
static int64_t kind_ns(const struct vw_rep_run *run, const char *kind, int64_t *n_ops)
{
    for (int i = 0; i < run->n_kinds; i++) {
        if (strcmp(run->kinds[i].kind, kind) == 0) {
            *n_ops = run->kinds[i].n_ops;
            return run->kinds[i].ns;
        }
    }
    *n_ops = 0;
    return -1;
}

static void time_bar(FILE *f, const struct vw_report *r, int i, const char *kind, double y,
                     double x0, double bw, double tmax)
{
    static const char *const fill[2] = {"#3b6fb6", "#e07b2a"};
    const struct vw_rep_run *run = &r->run[i];
    int64_t n_ops;
    const int64_t ns = kind_ns(run, kind, &n_ops);
    char b1[32];
    const double w = ns > 0 && tmax > 0 ? bw * (double)ns / tmax : 0;
    const double pct = run->op_ns > 0 && ns >= 0 ? 100.0 * (double)ns / (double)run->op_ns : 0;
    fms(b1, sizeof b1, ns);
    fprintf(f, "<g><title>run %s, ", run_label(i));
    vw_html_text(f, kind);
    fprintf(f,
            ": %s in %lld ops (%.1f%% of the op time)</title><rect x=\"%.1f\" y=\"%.1f\" "
            "width=\"%.1f\" height=\"11\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" "
            "font-size=\"10\" fill=\"#333\">%s%s%s, %.1f%%, %lld ops</text></g>\n",
            b1, (long long)n_ops, pct, x0, y, w, fill[i], x0 + w + 4, y + 9,
            r->n_runs == 2 ? run_label(i) : "", r->n_runs == 2 ? ": " : "", b1, pct,
            (long long)n_ops);
}

static void section_timing(FILE *f, const struct vw_report *r)
{
    char b1[32], b2[32];
    double tmax = 0;
    const struct vw_rep_run *a = &r->run[0];
    for (int i = 0; i < r->n_runs; i++) {
        for (int k = 0; k < r->run[i].n_kinds; k++) {
            tmax = (double)r->run[i].kinds[k].ns > tmax ? (double)r->run[i].kinds[k].ns : tmax;
        }
    }
    fputs("<section id=\"timing\"><h2>Op time by kind</h2>\n", f);
    for (int i = 0; i < r->n_runs; i++) {
        fprintf(f,
                "<p>Run %s: ops took %s in total; the steps %s (wall time measured by the "
                "engine while recording, so with the tracer's overhead).</p>\n",
                run_label(i), fms(b1, sizeof b1, r->run[i].op_ns),
                fms(b2, sizeof b2, r->run[i].step_ns));
    }
    if (tmax <= 0) {
        fputs("<p class=\"muted\">No op time was measured.</p></section>\n", f);
        return;
    }
    const double row = r->n_runs == 2 ? 30 : 17, x0 = 100, bw = 520;
    const double h = 10 + row * a->n_kinds;
    fprintf(f,
            "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"op time by kind\">\n",
            x0 + bw + 160, h, x0 + bw + 160, h);
    for (int k = 0; k < a->n_kinds; k++) {
        const double y = 4 + row * k;
        fprintf(f,
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" "
                "fill=\"#222\">",
                x0 - 6, y + 10 + (r->n_runs == 2 ? 6 : 0));
        vw_html_text(f, a->kinds[k].kind);
        fputs("</text>\n", f);
        for (int i = 0; i < r->n_runs; i++) {
            time_bar(f, r, i, a->kinds[k].kind, y + 13.0 * i, x0, bw, tmax);
        }
    }
    fputs("</svg>\n</section>\n", f);
}

/* ---- NaN / Inf --------------------------------------------------------------------------------
 */

static void section_nonfinite(FILE *f, const struct vw_report *r)
{
    fputs("<section id=\"nonfinite\"><h2>NaN and Inf</h2>\n", f);
    for (int i = 0; i < r->n_runs; i++) {
        const struct vw_rep_run *run = &r->run[i];
        if (run->n_nf_total == 0) {
            fprintf(f,
                    "<p><span class=\"badge grn\">none</span> No tensor of run %s holds a NaN "
                    "or an Inf",
                    run_label(i));
            if (run->n_mask > 0) {
                fprintf(f,
                        " apart from the -inf of the causal attention mask (%lld score "
                        "tensors, as expected)",
                        (long long)run->n_mask);
            }
            fputs(".</p>\n", f);
            continue;
        }
        fprintf(f,
                "<p><span class=\"badge red\">%lld</span> op tensors of run %s hold NaN or "
                "Inf values%s:</p>\n<table><tr><th class=\"n\">step</th><th>op</th><th>role"
                "</th><th class=\"n\">NaN</th><th class=\"n\">Inf</th></tr>\n",
                (long long)run->n_nf_total, run_label(i),
                run->n_nf_total > run->n_nf ? " (the first ones)" : "");
        for (int k = 0; k < run->n_nf; k++) {
            fprintf(f, "<tr><td class=\"n\">%lld</td><td><code>", (long long)run->nf[k].step);
            vw_html_text(f, run->nf[k].name);
            fputs("</code></td><td>", f);
            vw_html_text(f, run->nf[k].role);
            fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td></tr>\n",
                    (long long)run->nf[k].n_nan, (long long)run->nf[k].n_inf);
        }
        fputs("</table>\n", f);
    }
    fputs("</section>\n", f);
}

/* ---- explain ----------------------------------------------------------------------------------
 */

/* A horizontal bar of v in a cell: |v| = vmax spans half the width, negative to the left. */
static void bar_svg(FILE *f, double v, double vmax)
{
    const double W = 260, mid = W / 2;
    fprintf(f,
            "<svg width=\"%.0f\" height=\"14\" viewBox=\"0 0 %.0f 14\"><line x1=\"%.0f\" "
            "y1=\"0\" x2=\"%.0f\" y2=\"14\" stroke=\"#9aa2b1\"/>",
            W, W, mid, mid);
    if (!isnan(v) && vmax > 0) {
        const double w = fabs(v) / vmax * (mid - 2);
        fprintf(f, "<rect x=\"%.1f\" y=\"2\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>",
                v < 0 ? mid - w : mid, w, v < 0 ? "#d7301f" : "#3b6fb6");
    }
    fputs("</svg>", f);
}

static void lens_cells(FILE *f, const struct vw_report *r, const struct vw_lens_point *p)
{
    char b1[32], b2[32];
    if (!p->known) {
        fputs("<td class=\"n\" colspan=\"3\" title=\"", f);
        vw_html_text(f, p->why ? p->why : "not recorded");
        fputs("\">n/a</td><td></td>", f);
        return;
    }
    fprintf(f, "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%lld</td><td>",
            fnum(b1, sizeof b1, p->logit, 5), fpct(b2, sizeof b2, p->prob), (long long)p->rank);
    if (p->n_top > 0) {
        snprintf(b1, sizeof b1, "id %d, p %.3g", (int)p->top[0], p->top_prob[0]);
        put_piece(f, p->top[0] == r->ex.tok ? "x" : NULL, b1, model_piece(r, p->top[0]));
    }
    fputs("</td>", f);
}

/* A plot area: n points spread over [x0, x0 + pw], values [lo, hi] over [y0 + ph, y0]. */
struct plot {
    double x0, y0, pw, ph, lo, hi;
    int64_t n;
};

static double plot_x(const struct plot *p, int64_t i)
{
    return p->x0 + p->pw * (double)i / (double)(p->n > 1 ? p->n - 1 : 1);
}

static double plot_y(const struct plot *p, double v)
{
    return p->y0 + p->ph - p->ph * (v - p->lo) / (p->hi - p->lo);
}

/* Grid lines with their values, and the stage names under the x axis. */
static void lens_frame(FILE *f, const struct plot *p)
{
    char name[48];
    for (int k = 0; k <= 4; k++) {
        const double v = p->lo + (p->hi - p->lo) * k / 4;
        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e3e6ec\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\" "
                "fill=\"#555\">%.3g</text>\n",
                p->x0, plot_y(p, v), p->x0 + p->pw, plot_y(p, v), p->x0 - 6, plot_y(p, v) + 3, v);
    }
    for (int64_t i = 0; i < p->n; i++) {
        snprintf(name, sizeof name, i == 0 ? "emb" : "%lld%s", (long long)((i - 1) / 2),
                 i % 2 ? "a" : "f");
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"10\" "
                "fill=\"#555\">%s</text>\n",
                plot_x(p, i), p->y0 + p->ph + 16, name);
    }
}

/* Run i's line of the lens chart, points with tooltips, and its label. */
static void lens_line(FILE *f, const struct vw_report *r, int i, const struct plot *p)
{
    static const char *const stroke[2] = {"#3b6fb6", "#e07b2a"};
    char name[48], b1[32];
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", stroke[i]);
    for (int64_t k = 0; k < p->n; k++) {
        const struct vw_lens_point *q = &r->ex.lens[i].p[k];
        if (q->known) {
            fprintf(f, "%.1f,%.1f ", plot_x(p, k), plot_y(p, q->logit));
        }
    }
    fputs("\"/>\n", f);
    for (int64_t k = 0; k < p->n; k++) {
        const struct vw_lens_point *q = &r->ex.lens[i].p[k];
        if (q->known) {
            fprintf(f,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>run %s, "
                    "after %s: logit %s, rank %lld</title></circle>\n",
                    plot_x(p, k), plot_y(p, q->logit), stroke[i], run_label(i),
                    point_name(k, name, sizeof name), fnum(b1, sizeof b1, q->logit, 5),
                    (long long)q->rank);
        }
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" fill=\"%s\">run %s</text>\n",
            p->x0 + p->pw + 10, p->y0 + 12 + 16.0 * i, stroke[i], run_label(i));
}

/* The explained token's logit after each stage, one line per run. */
static void lens_chart(FILE *f, const struct vw_report *r)
{
    const double W = 620, H = 230;
    struct plot p = {46, 30, W - 46 - 80, H - 30 - 40, HUGE_VAL, -HUGE_VAL, r->ex.lens[0].n_points};
    for (int i = 0; i < r->n_runs; i++) {
        for (int64_t k = 0; k < p.n; k++) {
            const struct vw_lens_point *q = &r->ex.lens[i].p[k];
            p.lo = q->known && q->logit < p.lo ? q->logit : p.lo;
            p.hi = q->known && q->logit > p.hi ? q->logit : p.hi;
        }
    }
    if (!(p.hi >= p.lo) || p.n < 2) {
        return;
    }
    p.lo = floor(p.lo);
    p.hi = p.lo + 4 * ceil((p.hi - p.lo) / 4 + 1e-9); /* four whole-number steps, or more */
    fprintf(f,
            "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
            "aria-label=\"logit lens\">\n<text x=\"%.0f\" y=\"16\" font-size=\"13\" "
            "font-weight=\"600\" fill=\"#222\">logit of the explained token after each "
            "stage</text>\n",
            W, H, W, H, p.x0);
    lens_frame(f, &p);
    for (int i = 0; i < r->n_runs; i++) {
        lens_line(f, r, i, &p);
    }
    fputs("</svg>\n", f);
}

static void explain_lens(FILE *f, const struct vw_report *r)
{
    char name[48];
    const struct vw_rep_explain *e = &r->ex;
    fputs("<h3>Logit lens</h3>\n<p>The residual stream after each stage, put through the "
          "model's final norm and output matrix: the explained token's logit, probability and "
          "rank (1 = the most likely token) had the model stopped there, and the top token "
          "there.</p>\n",
          f);
    lens_chart(f, r);
    fputs("<table><tr><th rowspan=\"2\">after</th>", f);
    for (int i = 0; i < r->n_runs; i++) {
        fprintf(f, "<th colspan=\"4\">run %s</th>", run_label(i));
    }
    fputs("</tr><tr>", f);
    for (int i = 0; i < r->n_runs; i++) {
        fputs("<th class=\"n\">logit</th><th class=\"n\">prob</th><th class=\"n\">rank</th>"
              "<th>top 1</th>",
              f);
    }
    fputs("</tr>\n", f);
    for (int64_t p = 0; p < e->lens[0].n_points; p++) {
        fprintf(f, "<tr><td>%s</td>", point_name(p, name, sizeof name));
        for (int i = 0; i < r->n_runs; i++) {
            lens_cells(f, r, &e->lens[i].p[p]);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Largest |value| of a column of attribution values. */
static double col_max(const double *v, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        m = !isnan(v[i]) && fabs(v[i]) > m ? fabs(v[i]) : m;
    }
    return m;
}

/* Per-head contributions of attention component i as a tooltip text. */
static void heads_title(FILE *f, const struct vw_attr *a, int64_t i)
{
    const double *h = a->head + ((i - 1) / 2) * a->n_head;
    fputs(" title=\"heads:", f);
    for (int64_t k = 0; k < a->n_head; k++) {
        if (!isnan(h[k])) {
            fprintf(f, " %lld: %+.3f", (long long)k, h[k]);
        }
    }
    fputc('"', f);
}

static void attr_row(FILE *f, const struct vw_report *r, int64_t i, const double *dc, double vmax)
{
    const struct vw_attr *a = &r->ex.attr[0];
    char name[48], b1[32];
    vw_attr_comp_name(i, name, sizeof name);
    fputs("<tr><td", f);
    if (i % 2 == 1 && !isnan(a->head[((i - 1) / 2) * a->n_head])) {
        heads_title(f, a, i);
    }
    fprintf(f, ">%s</td>", name);
    for (int k = 0; k < r->n_runs; k++) {
        fprintf(f, "<td class=\"n\">%s</td>", fnum(b1, sizeof b1, r->ex.attr[k].comp[i], 4));
    }
    if (r->n_runs == 2) {
        fprintf(f, "<td class=\"n\">%s%s</td>", !isnan(dc[i]) && dc[i] >= 0 ? "+" : "",
                fnum(b1, sizeof b1, dc[i], 4));
    }
    fputs("<td>", f);
    bar_svg(f, r->n_runs == 2 ? dc[i] : a->comp[i], vmax);
    fputs("</td></tr>\n", f);
}

static void attr_totals(FILE *f, const struct vw_report *r)
{
    static const char *const labels[3] = {"sum of components", "logit", "residual (rounding)"};
    char b1[32];
    for (int row = 0; row < 3; row++) {
        fprintf(f, "<tr class=\"%s\"><td>%s</td>", row == 0 ? "sum" : "", labels[row]);
        double v[2] = {0, 0};
        for (int k = 0; k < r->n_runs; k++) {
            const struct vw_attr *a = &r->ex.attr[k];
            v[k] = row == 0 ? a->sum : row == 1 ? a->target : a->residual;
            fprintf(f, "<td class=\"n\">%s</td>", fnum(b1, sizeof b1, v[k], row == 2 ? 2 : 5));
        }
        if (r->n_runs == 2) {
            fprintf(f, "<td class=\"n\">%s</td>",
                    row < 2 ? fnum(b1, sizeof b1, v[1] - v[0], 4) : "");
        }
        fputs("<td></td></tr>\n", f);
    }
}

/* B - A of attribution component i (NaN when either is unknown). */
static double comp_delta(const struct vw_report *r, int64_t i)
{
    return r->ex.attr[1].comp[i] - r->ex.attr[0].comp[i];
}

/* The two components with the largest |B - A| as a sentence ("... from layer 4 ffn (+3.811) and
 * layer 3 ffn (+2.479)"). Nothing without two runs or numbers. */
static void attr_summary(FILE *f, const struct vw_report *r)
{
    const struct vw_attr *a = &r->ex.attr[0];
    const int64_t n = a->n_comp - (a->at_final ? 0 : 1);
    int64_t best[2] = {-1, -1};
    char name[48];
    for (int64_t i = 0; r->n_runs == 2 && i < n; i++) {
        const double d = comp_delta(r, i);
        if (isnan(d)) {
            continue;
        }
        if (best[0] < 0 || fabs(d) > fabs(comp_delta(r, best[0]))) {
            best[1] = best[0];
            best[0] = i;
        } else if (best[1] < 0 || fabs(d) > fabs(comp_delta(r, best[1]))) {
            best[1] = i;
        }
    }
    const double total = r->ex.attr[1].target - a->target;
    if (best[0] < 0 || isnan(total)) {
        return;
    }
    fputs("<p><b>B&minus;A:</b> the logit of ", f);
    put_piece(f, "x", NULL, model_piece(r, r->ex.tok));
    fprintf(f, " at step %lld is %+.4g in B relative to A; the largest differences come from ",
            (long long)r->ex.step, total);
    for (int k = 0; k < 2 && best[k] >= 0; k++) {
        vw_attr_comp_name(best[k], name, sizeof name);
        fprintf(f, "%s%s (%+.4g)", k ? " and " : "", name, comp_delta(r, best[k]));
    }
    fputs(".</p>\n", f);
}

static void explain_attr(FILE *f, const struct vw_report *r)
{
    const struct vw_attr *a = &r->ex.attr[0];
    const int64_t n = a->n_comp - (a->at_final ? 0 : 1);
    double *dc = calloc((size_t)(a->n_comp > 0 ? a->n_comp : 1), sizeof(double));
    if (!dc) {
        return;
    }
    for (int64_t i = 0; r->n_runs == 2 && i < a->n_comp; i++) {
        dc[i] = r->ex.attr[1].comp[i] - a->comp[i];
    }
    fputs("<h3>Direct logit attribution</h3>\n<p>The final logit split exactly into one term per "
          "component that writes to the residual stream (the embedding, each layer's attention "
          "and FFN), with the final RMSNorm's scale frozen at its recorded value. Positive terms "
          "push the token up. Hover an attention row for its heads.</p>\n<table><tr>"
          "<th>component</th>",
          f);
    for (int k = 0; k < r->n_runs; k++) {
        fprintf(f, "<th class=\"n\">run %s</th>", run_label(k));
    }
    fprintf(f, "%s<th>%s</th></tr>\n", r->n_runs == 2 ? "<th class=\"n\">B&minus;A</th>" : "",
            r->n_runs == 2 ? "B&minus;A (blue: more in B)" : "contribution");
    const double vmax = col_max(r->n_runs == 2 ? dc : a->comp, n);
    for (int64_t i = 0; i < n; i++) {
        attr_row(f, r, i, dc, vmax);
    }
    attr_totals(f, r);
    fputs("</table>\n", f);
    attr_summary(f, r);
    free(dc);
}

static void explain_intro(FILE *f, const struct vw_report *r)
{
    const struct vw_rep_explain *e = &r->ex;
    char b1[48];
    fprintf(f, "<p>Step %lld, position %lld", (long long)e->step, (long long)e->x[0].pos);
    if (r->n_runs == 2 && e->x[1].pos != e->x[0].pos) {
        fprintf(f, " in A and %lld in B (the step's last position in each run)",
                (long long)e->x[1].pos);
    }
    fprintf(f, "%s. ",
            e->step_differs ? ": the first step after which A and B sampled different tokens" : "");
    for (int i = 0; i < r->n_runs; i++) {
        fprintf(f, "Run %s sampled ", run_label(i));
        snprintf(b1, sizeof b1, "id %d", (int)e->sampled[i]);
        put_piece(f, NULL, b1, e->sampled[i] >= 0 ? model_piece(r, e->sampled[i]) : "?");
        fprintf(f, " (probability %s). ", fpct(b1, sizeof b1, e->x[i].next_prob));
    }
    fputs("Explained token: ", f);
    snprintf(b1, sizeof b1, "id %d", (int)e->tok);
    put_piece(f, "x", b1, model_piece(r, e->tok));
    fprintf(f, " (id %d).</p>\n<p class=\"small muted\">Model <code>", (int)e->tok);
    vw_html_text(f, lm_model_path(e->m));
    fputs("</code>, sha256 <code>", f);
    vw_html_text(f, e->model_sha256);
    fputs("</code> (matches the trace", f);
    fputs(r->n_runs == 2 ? "s).</p>\n" : ").</p>\n", f);
}

static void section_explain(FILE *f, const struct vw_report *r)
{
    fputs("<section id=\"explain\"><h2>Explain: where the token gets its logit</h2>\n", f);
    if (!r->ex.available) {
        fputs("<p class=\"muted\">Not available: ", f);
        vw_html_text(f, r->ex.why);
        fputs(". Pass the model file with <code>-m MODEL</code> to add this section.</p>\n"
              "</section>\n",
              f);
        return;
    }
    explain_intro(f, r);
    explain_lens(f, r);
    explain_attr(f, r);
    fputs("</section>\n", f);
}

/* ---- glossary and footer ----------------------------------------------------------------------
 */

static void section_glossary(FILE *f, const struct vw_report *r)
{
    fputs("<section id=\"glossary\"><details><summary>Glossary: how to read this report"
          "</summary>\n<dl class=\"glossary\">"
          "<dt>trace</dt><dd>a file recorded by <code>lltrace run</code>: every op the engine "
          "executed, with its input and output tensors, for every step.</dd>"
          "<dt>step</dt><dd>one call of the model: step 0 processes the whole prompt, each later "
          "step one new token.</dd>"
          "<dt>op names</dt><dd><code>blk.L.x</code> is op x of layer L: attn_norm, attn_q/k/v "
          "(projections), rope_q/k (rotary position embedding), cache_k/v (KV cache writes), kq "
          "(attention scores), kq_softmax, kqv, attn_out, ffn_inp (residual after attention), "
          "ffn_norm, ffn_gate/up/act/out, l_out (residual after the layer).</dd>"
          "<dt>NMSE</dt><dd>sum (a&minus;b)&sup2; / sum b&sup2; with b from A and a from B: 0 "
          "for equal tensors, 1 when the error is as large as the signal.</dd>"
          "<dt>local / propagated</dt><dd>a divergence is local when the op's inputs agree in A "
          "and B but its output does not (the bug is in this op), propagated when an input "
          "already differs.</dd>"
          "<dt>logit lens</dt><dd>what the model would predict if it stopped after a given "
          "layer.</dd>"
          "<dt>direct logit attribution</dt><dd>how much each layer's attention and FFN add to "
          "the final logit of a token.</dd></dl></details>\n",
          f);
    fputs("<p class=\"small muted\">Written by <code>", f);
    vw_html_text(f, r->o.argv_s ? r->o.argv_s : "lltrace report");
    fputs("</code>. Reproduce any number with <code>lltrace diff</code>, <code>lltrace "
          "explain</code> or <code>lltrace sql</code> on the same traces.</p>\n</section>\n",
          f);
}

int vw_report_html(FILE *f, const struct vw_report *r)
{
    page_head(f, r);
    page_nav(f, r);
    if (r->n_runs == 2) {
        verdict_two(f, r);
    } else {
        verdict_one(f, r);
    }
    section_runs(f, r);
    if (r->n_runs == 2) {
        section_divergence(f, r);
        section_heatmap(f, r);
        section_steps(f, r);
    }
    section_residual(f, r);
    section_timing(f, r);
    section_nonfinite(f, r);
    section_explain(f, r);
    section_glossary(f, r);
    fputs("</main>\n</body>\n</html>\n", f);
    return ferror(f) ? -1 : 0;
}

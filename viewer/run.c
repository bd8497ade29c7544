/*
 * The generation loop behind `lltrace run` (see run_int.h): prompt rendering and tokenization,
 * the prompt step, then one token per step until EOS or n_predict, streaming pieces as they
 * come, and the trace's run metadata, tokens and end marker.
 */
#include "run_int.h"
#include "build_info.h"
#include "trc.h"
#include "shacache.h"
#include "vw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = 0;
        }
    }
    fclose(f);
    return buf;
}

/* The prompt as text: plain, or rendered through a chat template. Returns malloc'd text. */
static char *render_prompt(const struct vw_run_opts *o, lm_model *m, int *tmpl_out)
{
    char *text = o->prompt_file ? read_text(o->prompt_file) : strdup(o->prompt);
    *tmpl_out = -1;
    if (!text) {
        vw_error("%s: cannot read the prompt", o->prompt_file ? o->prompt_file : "prompt");
        return NULL;
    }
    if (!o->chat) {
        return text;
    }
    int tmpl = o->chat_template
                   ? lm_chat_from_name(o->chat_template)
                   : lm_chat_detect(lm_model_chat_template(m) ? lm_model_chat_template(m) : "");
    if (tmpl < 0) {
        if (o->chat_template) {
            vw_error("unknown chat template '%s' (known: zephyr, llama2, chatml)",
                     o->chat_template);
        } else {
            vw_error("%s: the model's chat template is missing or not one lltrace can render; "
                     "choose one with --chat-template zephyr|llama2|chatml",
                     o->model);
        }
        free(text);
        return NULL;
    }
    int64_t len = lm_chat_render(tmpl, o->system, text, NULL, 0);
    char *out = malloc((size_t)len + 1);
    if (out) {
        lm_chat_render(tmpl, o->system, text, out, (size_t)len + 1);
    }
    free(text);
    *tmpl_out = tmpl;
    return out;
}

static int tokenize_prompt(const struct vw_run_opts *o, lm_model *m, const char *text,
                           int32_t **ids, int64_t *n)
{
    int64_t cap = (int64_t)strlen(text) + 8;
    if (o->tokens) {
        *ids = malloc((size_t)(o->n_tokens + o->n_predict + 1) * sizeof **ids);
        if (!*ids) {
            return vw_error("out of memory");
        }
        memcpy(*ids, o->tokens, (size_t)o->n_tokens * sizeof **ids);
        *n = o->n_tokens;
        return 0;
    }
    *ids = malloc((size_t)(cap + o->n_predict + 1) * sizeof **ids);
    if (!*ids || lm_prompt_tokens(m, &o->faults, text, *ids, cap, n) < 0) {
        return vw_error("%s: cannot tokenize the prompt", o->model);
    }
    if (*n == 0) {
        return vw_error("the prompt is empty and no BOS is added: nothing to decode");
    }
    return 0;
}

static void print_piece(const lm_tok *t, int32_t id, bool ids)
{
    char buf[256];
    if (ids) {
        printf("%d ", id);
    } else {
        int64_t len = lm_tok_piece(t, id, false, buf, sizeof buf);
        fwrite(buf, 1, (size_t)(len < (int64_t)sizeof buf ? len : (int64_t)sizeof buf), stdout);
    }
    fflush(stdout);
}

int vw_trace_page_size(const char *const *rules, int n_rules)
{
    bool any_full = false, any_stats = false, all_covered = false;
    for (int i = 0; i < n_rules; i++) {
        const char *colon = strchr(rules[i], ':');
        size_t n = colon ? (size_t)(colon - rules[i]) : strlen(rules[i]);
        bool full = n == 4 && strncmp(rules[i], "full", 4) == 0;
        any_full = any_full || full;
        any_stats = any_stats || (n == 5 && strncmp(rules[i], "stats", 5) == 0);
        all_covered = all_covered || (!colon && !full);
    }
    if (!any_full && all_covered) {
        return 8192; /* no tensor data */
    }
    return any_stats ? 32768 : 0; /* some ops in full, some at level stats; or all in full */
}

static int trace_open(const struct vw_run_opts *o, trc_writer **w)
{
    char err[TRC_ERRBUF_SIZE];
    struct trc_writer_opts wo = {0};
    wo.overwrite = o->force;
    wo.page_size = vw_trace_page_size(o->rules, o->n_rules);
    if (trc_writer_open(o->trace, &wo, w, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    for (int i = 0; i < o->n_rules; i++) {
        if (trc_writer_add_rule(*w, o->rules[i]) < 0) {
            vw_error("%s", trc_writer_errmsg(*w));
            trc_writer_close(*w);
            *w = NULL;
            return 2;
        }
    }
    return 0;
}

/* The run row: everything that changes numerics, the model's identity, and the build. */
static int trace_describe(trc_writer *w, const struct vw_run_opts *o, lm_model *m,
                          const lm_ctx *ctx, int kv_type, const char *prompt, const char *rendered,
                          int tmpl)
{
    const struct lm_hparams *hp = lm_model_hparams(m);
    char faults[256];
    int64_t run_id;
    int rc = 0;
    lm_faults_format(&o->faults, faults, sizeof faults);
    rc |= trc_run_begin(w, "lltrace", &run_id);
    rc |= trc_run_set_str(w, "model_path", lm_model_path(m));
    rc |= trc_run_set_str(w, "model_sha256", vw_model_sha256(m));
    rc |= trc_run_set_str(w, "arch", "llama");
    rc |= trc_run_set_i64(w, "n_layer", hp->n_layer);
    rc |= trc_run_set_i64(w, "n_embd", hp->n_embd);
    rc |= trc_run_set_i64(w, "n_head", hp->n_head);
    rc |= trc_run_set_i64(w, "n_head_kv", hp->n_head_kv);
    rc |= trc_run_set_i64(w, "head_dim", hp->head_dim);
    rc |= trc_run_set_i64(w, "n_rot", hp->n_rot);
    rc |= trc_run_set_i64(w, "n_ff", hp->n_ff);
    rc |= trc_run_set_i64(w, "n_vocab", hp->n_vocab);
    rc |= trc_run_set_i64(w, "n_ctx", lm_ctx_n_ctx(ctx));
    const float theta = o->faults.rope_theta > 0 ? o->faults.rope_theta : hp->rope_theta;
    const float eps = o->faults.rms_eps > 0 ? o->faults.rms_eps : hp->rms_eps;
    rc |= trc_run_set_f64(w, "rope_theta", (double)theta);
    rc |= trc_run_set_f64(w, "rope_freq_scale", (double)hp->rope_freq_scale);
    rc |= trc_run_set_str(
        w, "rope_mode",
        (o->faults.rope_mode >= 0 ? o->faults.rope_mode : hp->rope_mode) == LM_ROPE_NEOX ? "neox"
                                                                                         : "norm");
    rc |= trc_run_set_f64(w, "rms_eps", (double)eps);
    rc |= trc_run_set_str(w, "weight_type", lm_type_name(hp->weight_type));
    rc |= trc_run_set_str(w, "kv_type", kv_type == LM_TYPE_F16 ? "f16" : "f32");
    rc |= trc_run_set_str(w, "prompt", prompt);
    if (tmpl >= 0) {
        rc |= trc_run_set_str(w, "chat_template", lm_chat_name(tmpl));
        rc |= trc_run_set_str(w, "rendered_prompt", rendered);
    }
    rc |= trc_run_set_f64(w, "temp", (double)o->sampler.temp);
    rc |= trc_run_set_i64(w, "top_k", o->sampler.top_k);
    rc |= trc_run_set_f64(w, "top_p", (double)o->sampler.top_p);
    rc |= trc_run_set_i64(w, "seed", (int64_t)o->sampler.seed);
    rc |= trc_run_set_i64(w, "n_threads", o->n_threads);
    rc |= trc_run_set_i64(w, "n_predict", o->n_predict);
    rc |= trc_run_set_str(w, "faults", faults);
    rc |= trc_run_set_str(w, "build_version", LT_VERSION);
    rc |= trc_run_set_str(w, "build_commit", LT_GIT_DESCRIBE);
    rc |= trc_run_set_str(w, "build_compiler", LT_COMPILER);
    rc |= trc_run_set_str(w, "build_flags", LT_BUILD_TYPE " " LT_CFLAGS);
    rc |= trc_run_set_str(w, "simd", lm_simd_current());
    return rc ? vw_error("%s: %s", o->trace, trc_writer_errmsg(w)) : 0;
}

static int record_token(trc_writer *w, const lm_tok *t, int64_t i, int32_t id, bool prompt,
                        float prob, float logit)
{
    char piece[256];
    int64_t len = lm_tok_piece(t, id, true, piece, sizeof piece);
    if (len >= (int64_t)sizeof piece) {
        piece[sizeof piece - 1] = 0;
    }
    return trc_token_add(w, i, id, piece, prompt, prompt && i == 0 && id == lm_tok_bos(t), prob,
                         logit);
}

struct gen {
    const struct vw_run_opts *o;
    lm_model *m;
    lm_ctx *ctx;
    lm_sampler *smp;
    trc_writer *w;
    int32_t *ids;
    int64_t n_prompt, n_gen;
    double t_prompt, t_gen;
    int32_t next;  /* the token sample_next drew at the end of the last decode */
    bool has_next; /* and it has not been used yet */
};

/* lm_ctx_opts.on_logits: samples the next token at the end of each decode call and records it
 * before the step is committed, so that the token goes into the trace with the step that
 * produced it (one commit per step instead of two). */
static int sample_next(void *user, const float *logits)
{
    struct gen *g = user;
    if (g->n_gen >= g->o->n_predict) {
        return 0;
    }
    float prob = NAN;
    int32_t id = lm_sampler_sample(g->smp, logits, &prob);
    int64_t i = g->n_prompt + g->n_gen;
    g->ids[i] = id;
    g->n_gen++;
    g->next = id;
    g->has_next = true;
    return g->w ? record_token(g->w, lm_model_tok(g->m), i, id, false, prob, logits[id]) : 0;
}

/* Prompt step, then one step per sampled token (sampled by sample_next). Returns an exit
 * code. */
static int generate(struct gen *g)
{
    const lm_tok *tok = lm_model_tok(g->m);
    double t0 = now_s();
    int rc = lm_ctx_decode(g->ctx, g->ids, g->n_prompt);
    g->t_prompt = now_s() - t0;
    t0 = now_s();
    while (rc == 0 && g->has_next) {
        int32_t id = g->next;
        g->has_next = false;
        if (id == lm_tok_eos(tok)) {
            break;
        }
        if (!g->o->quiet) {
            print_piece(tok, id, g->o->ids);
        }
        if (g->n_gen == g->o->n_predict) {
            break;
        }
        if (lm_ctx_n_past(g->ctx) >= lm_ctx_n_ctx(g->ctx)) {
            if (!g->o->quiet) {
                vw_warn("the context of %lld positions is full: generation stops here",
                        (long long)lm_ctx_n_ctx(g->ctx));
            }
            break;
        }
        rc = lm_ctx_decode(g->ctx, &id, 1);
    }
    g->t_gen = now_s() - t0;
    return rc < 0 ? vw_error("%s: %s", g->o->model, lm_ctx_errmsg(g->ctx)) : 0;
}

static void report_timing(const struct gen *g)
{
    fprintf(stderr, "\n\nprompt: %lld tokens in %.3f s (%.2f tokens/s)\n", (long long)g->n_prompt,
            g->t_prompt, (double)g->n_prompt / (g->t_prompt > 0 ? g->t_prompt : 1e-9));
    fprintf(stderr, "generation: %lld tokens in %.3f s (%.2f tokens/s)\n", (long long)g->n_gen,
            g->t_gen,
            g->n_gen > 1 ? (double)(g->n_gen - 1) / (g->t_gen > 0 ? g->t_gen : 1e-9) : 0.0);
}

static void verbose_prompt(const lm_tok *tok, const char *text, const int32_t *ids, int64_t n)
{
    char piece[256];
    fprintf(stderr, "prompt: '%s'\nnumber of tokens in prompt = %lld\n", text, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        int64_t len = lm_tok_piece(tok, ids[i], true, piece, sizeof piece);
        fprintf(stderr, "%6d -> '%.*s'\n", ids[i], (int)(len < 255 ? len : 255), piece);
    }
}

static int run_with_model(const struct vw_run_opts *o, lm_model *m, struct vw_run_result *res)
{
    char err[LM_ERRBUF_SIZE];
    struct gen g = {.o = o, .m = m};
    struct lm_ctx_opts co = {.n_ctx = o->n_ctx,
                             .n_threads = o->n_threads,
                             .kv_type = o->kv_type,
                             .faults = o->faults,
                             .on_logits = sample_next,
                             .on_logits_user = &g};
    int tmpl = -1, rc = 1;
    char *text = render_prompt(o, m, &tmpl);
    if (!text || tokenize_prompt(o, m, text, &g.ids, &g.n_prompt)) {
        goto done;
    }
    if (o->verbose_prompt) {
        verbose_prompt(lm_model_tok(m), text, g.ids, g.n_prompt);
    }
    if (o->trace && (rc = trace_open(o, &g.w)) != 0) {
        goto done;
    }
    rc = 1;
    co.trace = g.w;
    if (lm_ctx_create(m, &co, &g.ctx, err, sizeof err) < 0) {
        vw_error("%s", err);
        goto done;
    }
    if (g.n_prompt > lm_ctx_n_ctx(g.ctx)) {
        vw_error("the prompt has %lld tokens but the context holds %lld; raise --ctx",
                 (long long)g.n_prompt, (long long)lm_ctx_n_ctx(g.ctx));
        goto done;
    }
    g.smp = lm_sampler_create(&o->sampler, lm_model_hparams(m)->n_vocab);
    if (!g.smp ||
        (g.w && trace_describe(g.w, o, m, g.ctx, co.faults.kv_f16 ? LM_TYPE_F16 : o->kv_type,
                               o->prompt ? o->prompt : text, text, tmpl))) {
        goto done;
    }
    for (int64_t i = 0; g.w && i < g.n_prompt; i++) {
        if (record_token(g.w, lm_model_tok(m), i, g.ids[i], true, NAN, NAN) < 0) {
            vw_error("%s: %s", o->trace, trc_writer_errmsg(g.w));
            goto done;
        }
    }
    if ((rc = generate(&g)) == 0) {
        if (!o->quiet) {
            report_timing(&g);
        }
        if (g.w && trc_run_end(g.w, "complete") < 0) {
            rc = vw_error("%s: %s", o->trace, trc_writer_errmsg(g.w));
        }
    }
    if (rc == 0 && res) {
        const int64_t nv = lm_model_hparams(m)->n_vocab;
        res->tokens = g.ids;
        g.ids = NULL;
        res->n_prompt = g.n_prompt;
        res->n_gen = g.n_gen;
        res->prompt_s = g.t_prompt;
        res->gen_s = g.t_gen;
        res->n_vocab = nv;
        res->last_logits = malloc((size_t)nv * sizeof(float));
        if (res->last_logits) {
            memcpy(res->last_logits, lm_ctx_logits(g.ctx), (size_t)nv * sizeof(float));
        }
    }
done:
    if (g.w && trc_writer_close(g.w) < 0 && rc == 0) {
        rc = vw_error("%s: cannot finish the trace", o->trace);
    }
    lm_sampler_destroy(g.smp);
    lm_ctx_destroy(g.ctx);
    free(g.ids);
    free(text);
    return rc;
}

int vw_run(const struct vw_run_opts *o, struct vw_run_result *res)
{
    char err[LM_ERRBUF_SIZE];
    lm_model *m;
    if (res) {
        memset(res, 0, sizeof *res);
    }
    if (lm_model_open(o->model, &m, err, sizeof err) < 0) {
        return vw_error("%s", err);
    }
    int rc = run_with_model(o, m, res);
    lm_model_close(m);
    return rc;
}

void vw_run_result_free(struct vw_run_result *r)
{
    if (r) {
        free(r->tokens);
        free(r->last_logits);
        memset(r, 0, sizeof *r);
    }
}

/*
 * Faults injected on purpose (`lltrace run --inject`): each one reproduces a bug people hit
 * when porting a LLaMA engine, as one small switch read by the forward pass (ctx.c, forward.c)
 * or by prompt tokenization (lm_prompt_tokens). Parsing and formatting live here so the run
 * metadata of a trace names exactly what was injected.
 */
#include "lm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lm_faults_init(struct lm_faults *f)
{
    memset(f, 0, sizeof *f);
    f->rope_mode = -1;
}

static int parse_float(const char *v, float *out)
{
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !(x > 0.0f) || !isfinite(x)) {
        return -1;
    }
    *out = x;
    return 0;
}

int lm_faults_parse(struct lm_faults *f, const char *spec, char *errbuf, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    char key[32];
    const char *v = eq ? eq + 1 : "";
    size_t kl = eq ? (size_t)(eq - spec) : strlen(spec);
    if (kl >= sizeof key) {
        kl = sizeof key - 1;
    }
    memcpy(key, spec, kl);
    key[kl] = 0;
    const char *want = !strcmp(key, "rope-theta") || !strcmp(key, "rms-eps")
                           ? "a positive finite number"
                       : !strcmp(key, "pos-offset") ? "an integer in 0..1000000"
                                                    : NULL;
    if (!strcmp(key, "rope") && (!strcmp(v, "neox") || !strcmp(v, "norm"))) {
        f->rope_mode = !strcmp(v, "neox") ? LM_ROPE_NEOX : LM_ROPE_NORM;
    } else if (!strcmp(key, "rope-theta") && parse_float(v, &f->rope_theta) == 0) {
    } else if (!strcmp(key, "rms-eps") && parse_float(v, &f->rms_eps) == 0) {
    } else if (!strcmp(key, "pos-offset") && *v) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end || n < 0 || n > 1000000) {
            goto bad;
        }
        f->pos_offset = n;
    } else if (!strcmp(key, "bos") && (!strcmp(v, "none") || !strcmp(v, "double"))) {
        f->bos = !strcmp(v, "none") ? 1 : 2;
    } else if (!strcmp(key, "gqa") && !strcmp(v, "tile")) {
        f->gqa_tile = true;
    } else if (!strcmp(key, "kv") && !strcmp(v, "f16")) {
        f->kv_f16 = true;
    } else if (!strcmp(key, "softmax") && !strcmp(v, "f16")) {
        f->softmax_f16 = true;
    } else if (!strcmp(spec, "qk-permute")) {
        f->qk_permute = true;
    } else {
        goto bad;
    }
    return 0;
bad:
    if (want) {
        snprintf(errbuf, errlen, "bad fault '%s': %s wants %s", spec, key, want);
        return LM_EINVAL;
    }
    snprintf(errbuf, errlen,
             "unknown fault '%s' (known: rope=neox|norm, rope-theta=X, pos-offset=N, "
             "bos=none|double, rms-eps=X, gqa=tile, kv=f16, softmax=f16, qk-permute)",
             spec);
    return LM_EINVAL;
}

int lm_faults_format(const struct lm_faults *f, char *buf, size_t cap)
{
    int n = 0;
    buf[0] = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if ((size_t)n < cap) {                                                                     \
            n += snprintf(buf + n, cap - (size_t)n, "%s", n ? "," : "");                           \
        }                                                                                          \
        if ((size_t)n < cap) {                                                                     \
            n += snprintf(buf + n, cap - (size_t)n, __VA_ARGS__);                                  \
        }                                                                                          \
    } while (0)
    if (f->rope_mode >= 0) {
        ADD("rope=%s", f->rope_mode == LM_ROPE_NEOX ? "neox" : "norm");
    }
    if (f->rope_theta > 0) {
        ADD("rope-theta=%g", (double)f->rope_theta);
    }
    if (f->pos_offset) {
        ADD("pos-offset=%lld", (long long)f->pos_offset);
    }
    if (f->bos) {
        ADD("bos=%s", f->bos == 1 ? "none" : "double");
    }
    if (f->rms_eps > 0) {
        ADD("rms-eps=%g", (double)f->rms_eps);
    }
    if (f->gqa_tile) {
        ADD("gqa=tile");
    }
    if (f->kv_f16) {
        ADD("kv=f16");
    }
    if (f->softmax_f16) {
        ADD("softmax=f16");
    }
    if (f->qk_permute) {
        ADD("qk-permute");
    }
#undef ADD
    return n;
}

int lm_prompt_tokens(const lm_model *m, const struct lm_faults *f, const char *text, int32_t *ids,
                     int64_t cap, int64_t *n_out)
{
    const lm_tok *t = lm_model_tok(m);
    int64_t n = 0;
    int rc = lm_tok_encode(t, text, strlen(text), true, true, ids, cap, &n);
    if (rc < 0) {
        *n_out = n + 1;
        return rc;
    }
    if (f && f->bos == 1 && n > 0 && ids[0] == lm_tok_bos(t)) {
        memmove(ids, ids + 1, (size_t)(n - 1) * sizeof *ids);
        n--;
    } else if (f && f->bos == 2 && lm_tok_add_bos(t)) {
        if (n + 1 > cap) {
            *n_out = n + 1;
            return LM_ERANGE;
        }
        memmove(ids + 1, ids, (size_t)n * sizeof *ids);
        ids[0] = lm_tok_bos(t);
        n++;
    }
    *n_out = n;
    return 0;
}

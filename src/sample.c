/*
 * Token sampling: greedy (the first maximum wins, as llama.cpp's greedy sampler), or the chain
 * top-k -> top-p -> temperature -> a seeded draw. The generator is splitmix64 + xoshiro256**,
 * so a seed gives the same tokens on every machine. Pure: no I/O. Buffers sized at creation.
 */
#include "lm.h"

#include <math.h>
#include <stdlib.h>

struct lm_sampler {
    struct lm_sampler_opts o;
    int64_t n_vocab;
    uint64_t s[4];
    int32_t *idx; /* (n_vocab) candidate ids */
    double *p;    /* (n_vocab) candidate weights */
};

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(uint64_t s[4])
{
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

lm_sampler *lm_sampler_create(const struct lm_sampler_opts *o, int64_t n_vocab)
{
    lm_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->o = *o;
    s->n_vocab = n_vocab;
    uint64_t x = o->seed;
    for (int i = 0; i < 4; i++) {
        s->s[i] = splitmix(&x);
    }
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    s->p = malloc((size_t)n_vocab * sizeof *s->p);
    if (!s->idx || !s->p) {
        lm_sampler_destroy(s);
        return NULL;
    }
    return s;
}

void lm_sampler_destroy(lm_sampler *s)
{
    if (!s) {
        return;
    }
    free(s->idx);
    free(s->p);
    free(s);
}

/* True when token a ranks before token b: higher logit, then lower id. */
static int before(const float *lg, int32_t a, int32_t b)
{
    return lg[a] > lg[b] || (lg[a] == lg[b] && a < b);
}

static void sift_down(int32_t *h, int64_t n, int64_t i, const float *lg)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, worst = i;
        /* a min-heap on rank: the root is the weakest of the kept candidates */
        if (l < n && before(lg, h[worst], h[l])) {
            worst = l;
        }
        if (r < n && before(lg, h[worst], h[r])) {
            worst = r;
        }
        if (worst == i) {
            return;
        }
        int32_t t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* The k best tokens in rank order into idx[0..k). O(n log k), no allocation. */
static void top_k(const float *lg, int64_t n, int64_t k, int32_t *idx)
{
    for (int64_t i = 0; i < k; i++) {
        idx[i] = (int32_t)i;
    }
    for (int64_t i = k / 2 - 1; i >= 0; i--) {
        sift_down(idx, k, i, lg);
    }
    for (int64_t i = k; i < n; i++) {
        if (before(lg, (int32_t)i, idx[0])) {
            idx[0] = (int32_t)i;
            sift_down(idx, k, 0, lg);
        }
    }
    for (int64_t end = k - 1; end > 0; end--) { /* heap sort: weakest to the back */
        int32_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        sift_down(idx, end, 0, lg);
    }
}

/* Softmax of logits over all tokens, to report the probability of a greedy pick. */
static float prob_of(const float *logits, int64_t n, int32_t id)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += exp((double)logits[i] - (double)logits[id]);
    }
    return (float)(1.0 / sum);
}

int32_t lm_sampler_sample(lm_sampler *s, const float *logits, float *prob)
{
    int64_t n = s->n_vocab;
    if (s->o.temp <= 0.0f) {
        int32_t best = 0;
        for (int64_t i = 1; i < n; i++) {
            if (logits[i] > logits[best]) {
                best = (int32_t)i;
            }
        }
        if (prob) {
            *prob = prob_of(logits, n, best);
        }
        return best;
    }
    int64_t k = s->o.top_k > 0 && s->o.top_k < n ? s->o.top_k : n;
    double sum = 0.0;
    top_k(logits, n, k, s->idx);
    for (int64_t i = 0; i < k; i++) {
        s->p[i] = exp(((double)logits[s->idx[i]] - (double)logits[s->idx[0]]) / (double)s->o.temp);
        sum += s->p[i];
    }
    if (s->o.top_p > 0.0f && s->o.top_p < 1.0f) {
        const double top_p = (double)s->o.top_p;
        double cum = 0.0;
        for (int64_t i = 0; i < k; i++) {
            cum += s->p[i] / sum;
            if (cum >= top_p) {
                k = i + 1;
                break;
            }
        }
        sum = 0.0;
        for (int64_t i = 0; i < k; i++) {
            sum += s->p[i];
        }
    }
    double u = (double)(next_u64(s->s) >> 11) * 0x1.0p-53 * sum, acc = 0.0;
    int64_t pick = k - 1;
    for (int64_t i = 0; i < k; i++) {
        acc += s->p[i];
        if (u < acc) {
            pick = i;
            break;
        }
    }
    if (prob) {
        *prob = (float)(s->p[pick] / sum);
    }
    return s->idx[pick];
}

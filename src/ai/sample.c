/*
 * sample.c: picks the next token from the logits. The chain is llama.cpp's
 * default order so that the same settings behave alike: repetition penalty,
 * top-k, top-p and min-p (on the untempered distribution), temperature, then
 * a draw from a seeded PRNG. Temperature 0 is greedy: the first maximum.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai/engine.h"
#include "util/util_int.h"

struct cand {
    int id;
    float logit;
};

struct ai_sampler {
    struct ai_sample_params p;
    int n_vocab;
    uint64_t rng;
    struct cand *cands; /* [n_vocab] */
    float *probs;       /* [n_vocab] */
};

/* splitmix64: small, fast, and the same stream on every platform for a seed. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_float(uint64_t *s)
{
    return (float)(rng_next(s) >> 40) / (float)(1u << 24); /* [0, 1) */
}

int ai_sampler_new(int n_vocab, const struct ai_sample_params *p, struct ai_sampler **out)
{
    *out = NULL;
    struct ai_sampler *s = kith_calloc(1, sizeof *s);
    if (!s)
        return KITH_ENOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->rng = p->seed ? p->seed : (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
    s->cands = kith_malloc((size_t)n_vocab * sizeof *s->cands);
    s->probs = kith_malloc((size_t)n_vocab * sizeof *s->probs);
    if (!s->cands || !s->probs) {
        ai_sampler_free(s);
        return KITH_ENOMEM;
    }
    *out = s;
    return 0;
}

void ai_sampler_free(struct ai_sampler *s)
{
    if (!s)
        return;
    kith_free(s->cands);
    kith_free(s->probs);
    kith_free(s);
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id - y->id;
}

/* Keeps the k best of n candidates at the front, sorted (selection by a
 * min-heap of k, then a sort of those k: O(n log k)). */
static int top_k(struct cand *c, int n, int k)
{
    if (k <= 0 || k >= n) {
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
        return n;
    }
    /* heap of the k best in c[0..k): root is the worst of them */
    for (int i = k / 2 - 1; i >= 0; i--)
        for (int j = i;;) {
            int l = 2 * j + 1, r = l + 1, w = j;
            if (l < k && cand_cmp(&c[l], &c[w]) > 0)
                w = l;
            if (r < k && cand_cmp(&c[r], &c[w]) > 0)
                w = r;
            if (w == j)
                break;
            struct cand t = c[j];
            c[j] = c[w];
            c[w] = t;
            j = w;
        }
    for (int i = k; i < n; i++) {
        if (cand_cmp(&c[i], &c[0]) >= 0)
            continue;
        c[0] = c[i];
        for (int j = 0;;) {
            int l = 2 * j + 1, r = l + 1, w = j;
            if (l < k && cand_cmp(&c[l], &c[w]) > 0)
                w = l;
            if (r < k && cand_cmp(&c[r], &c[w]) > 0)
                w = r;
            if (w == j)
                break;
            struct cand t = c[j];
            c[j] = c[w];
            c[w] = t;
            j = w;
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
    return k;
}

int ai_sample(struct ai_sampler *s, float *logits, const int32_t *hist, int n_hist)
{
    const struct ai_sample_params *p = &s->p;
    int V = s->n_vocab;

    /* repetition penalty over the recent window (each token once, as llama.cpp) */
    if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0 && n_hist > 0) {
        int from = p->repeat_last_n > 0 && n_hist > p->repeat_last_n ? n_hist - p->repeat_last_n : 0;
        for (int i = from; i < n_hist; i++) {
            int t = hist[i], dup = 0;
            if (t < 0 || t >= V)
                continue;
            for (int j = from; j < i && !dup; j++)
                dup = hist[j] == t;
            if (dup)
                continue;
            logits[t] = logits[t] > 0 ? logits[t] / p->repeat_penalty : logits[t] * p->repeat_penalty;
        }
    }

    if (p->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        return best;
    }

    for (int i = 0; i < V; i++)
        s->cands[i] = (struct cand){i, logits[i]};
    int n = top_k(s->cands, V, p->top_k);

    // softmax of the (sorted) survivors, untempered, for top-p and min-p
    float mx = s->cands[0].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf(s->cands[i].logit - mx);
        sum += s->probs[i];
    }
    if (p->top_p > 0 && p->top_p < 1) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->probs[i] / sum;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0 && p->min_p <= 1) {
        float cut = p->min_p; /* probs[0] is the maximum, 1 before normalising */
        int keep = 1;
        while (keep < n && s->probs[keep] >= cut)
            keep++;
        n = keep;
    }

    // temperature, then the draw
    sum = 0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf((s->cands[i].logit - mx) / p->temperature);
        sum += s->probs[i];
    }
    double r = rng_float(&s->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->probs[i];
        if (r < acc)
            return s->cands[i].id;
    }
    return s->cands[n - 1].id;
}

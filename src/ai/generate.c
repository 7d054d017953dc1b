/*
 * generate.c: the generation loop over a context (tokenize, prompt in
 * batches, then sample one token at a time), with streaming that never cuts
 * a UTF-8 character or shows the start of a stop string that may still
 * complete; and embeddings (mean of the final hidden states).
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "ai/engine.h"
#include "ai/tokenizer.h"
#include "util/util_int.h"

void kith_gen_params_init(struct kith_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p;
    p->max_tokens = 256;
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->add_bos = -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tokenizes @text with BOS as @add_bos says (-1: the model's default). */
static int tokenize_prompt(const kith_model *m, const char *text, int add_bos, int special,
                           int32_t **ids, size_t *n)
{
    int32_t *raw;
    size_t nraw;
    int rc = tokenizer_tokenize(m->tok, text, strlen(text),
                                special ? KITH_TOKENIZE_PARSE_SPECIAL : 0, &raw, &nraw);
    if (rc)
        return rc;
    int bos = (add_bos < 0 ? m->add_bos : add_bos) && m->bos >= 0;
    *ids = kith_malloc((nraw + 1) * sizeof(int32_t));
    if (!*ids) {
        kith_free(raw);
        return KITH_ENOMEM;
    }
    if (bos)
        (*ids)[0] = m->bos;
    memcpy(*ids + bos, raw, nraw * sizeof(int32_t));
    *n = nraw + (size_t)bos;
    kith_free(raw);
    return 0;
}

/* Bytes at the end of @s that start an incomplete UTF-8 character. */
static size_t utf8_partial_tail(const char *s, size_t len)
{
    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned char ch = (unsigned char)s[len - k];
        if ((ch & 0xC0) == 0x80)
            continue; /* continuation byte: look further back */
        size_t need = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

struct outbuf {
    char *p;
    size_t len, cap, sent;
};

int kith_generate(kith_ctx *c, const char *prompt, const struct kith_gen_params *pin, char **out,
                  struct kith_gen_stats *stats)
{
    struct kith_gen_params p;
    if (out)
        *out = NULL;
    if (!c || !prompt)
        return KITH_EINVAL;
    kith_gen_params_init(&p);
    if (pin) {
        if (pin->size < sizeof(size_t) || pin->size > sizeof p)
            return KITH_EINVAL;
        memcpy(&p, pin, pin->size);
    }
    const kith_model *m = c->m;
    struct kith_gen_stats st = {.size = sizeof st};
    struct ai_sampler *smp = NULL;
    int32_t *ids = NULL, *hist = NULL;
    size_t n_ids = 0;
    struct outbuf ob = {0};
    int rc;
    atomic_store(&c->cancel, 0);

    rc = tokenize_prompt(m, prompt, p.add_bos, p.parse_special, &ids, &n_ids);
    if (rc)
        goto done;
    if (!p.keep_context)
        c->n_past = 0;
    if ((size_t)c->n_past + n_ids >= (size_t)c->n_ctx) {
        rc = KITH_ERANGE;
        goto done;
    }
    struct ai_sample_params sp = {p.temperature, p.top_p, p.min_p, p.repeat_penalty,
                                  p.top_k,       p.repeat_last_n, p.seed};
    if ((rc = ai_sampler_new(m->n_vocab, &sp, &smp)))
        goto done;
    hist = kith_malloc(((size_t)c->n_ctx + 1) * sizeof(int32_t));
    if (!hist || kith_grow((void **)&ob.p, &ob.cap, 256, 1)) {
        rc = KITH_ENOMEM;
        goto done;
    }
    memcpy(hist, ids, n_ids * sizeof(int32_t));
    int n_hist = (int)n_ids;
    size_t max_stop = 0;
    for (size_t i = 0; i < p.n_stop; i++)
        if (p.stop[i] && strlen(p.stop[i]) > max_stop)
            max_stop = strlen(p.stop[i]);

    double t0 = now_s();
    if (n_ids > 0 && p.on_prompt) { /* batch by batch, saying how far */
        for (size_t i = 0; i < n_ids && !rc; i += (size_t)c->n_batch) {
            size_t nb = n_ids - i < (size_t)c->n_batch ? n_ids - i : (size_t)c->n_batch;
            if (atomic_load(&c->cancel))
                rc = KITH_ECANCELED;
            else if (!(rc = kith_eval(c, ids + i, nb, 0)))
                p.on_prompt(p.ud, i + nb, n_ids);
        }
    } else if (n_ids > 0) {
        rc = kith_eval(c, ids, n_ids, 0);
    } else if (m->bos >= 0) { /* nothing to condition on: start from BOS */
        rc = kith_eval(c, (int32_t[]){m->bos}, 1, 0);
    } else {
        rc = KITH_EINVAL;
    }
    if (rc)
        goto done;
    st.n_prompt = (int)n_ids;
    st.prompt_s = now_s() - t0;
    t0 = now_s();

    st.stop_reason = 0;
    for (int i = 0; i < p.max_tokens; i++) {
        if (atomic_load(&c->cancel)) {
            rc = KITH_ECANCELED;
            break;
        }
        float *logits = c->logits + (size_t)(c->n_logits - 1) * m->n_vocab;
        int tok = ai_sample(smp, logits, hist, n_hist);
        if (tokenizer_is_eog(m->tok, tok)) {
            st.stop_reason = 1;
            break;
        }
        hist[n_hist++] = tok;
        st.n_gen++;
        const char *piece;
        size_t plen;
        if (tokenizer_piece(m->tok, tok, 0, &piece, &plen) == 0 && plen) {
            if (kith_grow((void **)&ob.p, &ob.cap, ob.len + plen + 1, 1)) {
                rc = KITH_ENOMEM;
                break;
            }
            memcpy(ob.p + ob.len, piece, plen);
            ob.len += plen;
            ob.p[ob.len] = '\0';
        }
        /* a stop string ends the text where it starts */
        size_t safe = ob.len, from = ob.sent > max_stop ? ob.sent - max_stop : 0;
        int stopped = 0;
        for (size_t s = 0; s < p.n_stop && !stopped; s++) {
            const char *hit = p.stop[s] && *p.stop[s] ? strstr(ob.p + from, p.stop[s]) : NULL;
            if (hit) {
                safe = ob.len = (size_t)(hit - ob.p);
                ob.p[ob.len] = '\0';
                stopped = 1;
            }
        }
        if (!stopped) {
            /* hold back a suffix that may grow into a stop string */
            for (size_t s = 0; s < p.n_stop; s++) {
                size_t sl = p.stop[s] ? strlen(p.stop[s]) : 0;
                for (size_t k = sl > 1 ? sl - 1 : 0; k > 0; k--)
                    if (k <= ob.len && !memcmp(ob.p + ob.len - k, p.stop[s], k)) {
                        if (ob.len - k < safe)
                            safe = ob.len - k;
                        break;
                    }
            }
            safe -= utf8_partial_tail(ob.p, safe);
        }
        if (safe > ob.sent && p.on_token) {
            if (p.on_token(p.ud, ob.p + ob.sent, safe - ob.sent)) {
                ob.sent = safe;
                st.stop_reason = 3;
                break;
            }
        }
        if (safe > ob.sent)
            ob.sent = safe;
        if (stopped) {
            st.stop_reason = 2;
            break;
        }
        if (i + 1 == p.max_tokens)
            break;
        if (c->n_past >= c->n_ctx) {
            st.stop_reason = 4;
            break;
        }
        int32_t t32 = tok;
        if ((rc = ai_forward(c, &t32, 1, 0, 0)))
            break;
    }
    /* flush what was held back (a partial stop string that never completed) */
    if (rc == 0 && st.stop_reason != 3 && ob.len > ob.sent && p.on_token)
        p.on_token(p.ud, ob.p + ob.sent, ob.len - ob.sent);
    st.gen_s = now_s() - t0;
done:
    if (stats && stats->size >= sizeof(size_t)) {
        size_t sz = stats->size < sizeof st ? stats->size : sizeof st;
        memcpy(stats, &st, sz);
        stats->size = sz;
    }
    if (out && (rc == 0 || rc == KITH_ECANCELED) && ob.p) {
        *out = ob.p;
        ob.p = NULL;
    }
    kith_free(ob.p);
    kith_free(hist);
    kith_free(ids);
    ai_sampler_free(smp);
    return rc;
}

int kith_embed(kith_ctx *c, const char *text, float *out, size_t n_out)
{
    if (!c || !text || !out || n_out < (size_t)c->m->dim)
        return KITH_EINVAL;
    const kith_model *m = c->m;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tokenize_prompt(m, text, -1, 0, &ids, &n);
    if (rc)
        return rc;
    if (n == 0 || n > (size_t)c->n_ctx) {
        kith_free(ids);
        return n == 0 ? KITH_EINVAL : KITH_ERANGE;
    }
    double *acc = (double *)c->embd_acc;
    memset(acc, 0, (size_t)m->dim * sizeof(double));
    c->n_past = 0;
    for (size_t i = 0; i < n && rc == 0; i += (size_t)c->n_batch) {
        int nb = (int)(n - i < (size_t)c->n_batch ? n - i : (size_t)c->n_batch);
        rc = ai_forward(c, ids + i, nb, 0, 1);
        for (int j = 0; j < nb && rc == 0; j++)
            for (int e = 0; e < m->dim; e++)
                acc[e] += c->x[(size_t)j * m->dim + e];
    }
    c->n_past = 0;
    kith_free(ids);
    if (rc)
        return rc;
    double norm = 0;
    for (int e = 0; e < m->dim; e++) {
        acc[e] /= (double)n;
        norm += acc[e] * acc[e];
    }
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
    for (int e = 0; e < m->dim; e++)
        out[e] = (float)(acc[e] * norm);
    return 0;
}

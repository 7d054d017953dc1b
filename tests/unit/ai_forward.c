/*
 * Forward-pass invariants on small random-weight models built here (llama
 * and qwen2, tied and separate output, several weight types): evaluating a
 * sequence as one batch gives the logits of one-token-at-a-time evaluation;
 * continuing from a KV cache gives the logits of recomputing from scratch;
 * and the model loads what the writer wrote (shape checks, errors).
 */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "kith/kith.h"
#include "tt.h"

#define T 24 /* tokens per sequence */

static int make_model(const char *arch, uint32_t type, int tied, char *path, size_t cap)
{
    int k256 = quant_blck(type) == QK_K;
    struct ai_random_shape s = {.arch = arch,
                                .dim = k256 ? 256 : 64,
                                .n_layer = 2,
                                .n_head = 4,
                                .n_head_kv = 2,
                                .ff = k256 ? 512 : 96,
                                .vocab = 300,
                                .ctx = 128,
                                .type = type,
                                .seed = 7,
                                .tied = tied};
    snprintf(path, cap, "/tmp/kith_ai_forward_%d_%s_%u_%d.gguf", (int)getpid(), arch, type, tied);
    return ai_random_model_write(&s, path, NULL, NULL);
}

static double max_diff(const float *a, const float *b, int n, double *scale)
{
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)a[i]));
    }
    *scale = s;
    return d;
}

static void check(const char *arch, uint32_t type, int tied, int threads)
{
    char path[256], err[256];
    TT_OK(make_model(arch, type, tied, path, sizeof path));
    kith_model *m = NULL;
    kith_ctx *c = NULL;
    int rc = kith_model_load(path, &m, err, sizeof err);
    unlink(path);
    if (rc)
        TT_FAIL_("load: %s", err);
    struct kith_model_info in = {.size = sizeof in};
    TT_OK(kith_model_info(m, &in));
    TT_EQ(in.n_vocab, 300);
    struct kith_ctx_params cp;
    kith_ctx_params_init(&cp);
    cp.n_threads = threads;
    cp.n_batch = 32;
    TT_OK(kith_ctx_new(m, &cp, &c));
    int V = in.n_vocab;
    int32_t toks[T];
    for (int i = 0; i < T; i++)
        toks[i] = (int32_t)((i * 37 + 11) % V);
    float *batched = malloc(sizeof(float) * T * V), *single = malloc(sizeof(float) * T * V);
    TT_ASSERT(batched && single);

    // one batch, every token's logits
    TT_OK(kith_eval(c, toks, T, 1));
    for (int i = 0; i < T; i++)
        memcpy(batched + (size_t)i * V, kith_logits(c, i), sizeof(float) * V);
    // one token at a time
    kith_ctx_truncate(c, 0);
    for (int i = 0; i < T; i++) {
        TT_OK(kith_eval(c, &toks[i], 1, 0));
        memcpy(single + (size_t)i * V, kith_logits(c, -1), sizeof(float) * V);
    }
    double worst = 0, scale = 0;
    for (int i = 0; i < T; i++) {
        double sc;
        worst = fmax(worst, max_diff(batched + (size_t)i * V, single + (size_t)i * V, V, &sc));
        scale = fmax(scale, sc);
    }
    if (worst > 1e-4 * (scale + 1))
        TT_FAIL_("%s %s: batched vs single logits differ by %g (scale %g)", arch,
                 gguf_ggml_type_name(type), worst, scale);
    // KV cache reuse: keep the first 10 positions, recompute the rest in a batch
    kith_ctx_truncate(c, 10);
    TT_EQ(kith_ctx_n_past(c), 10);
    TT_OK(kith_eval(c, toks + 10, T - 10, 1));
    for (int i = 10; i < T; i++) {
        double sc, d = max_diff(kith_logits(c, i - 10), batched + (size_t)i * V, V, &sc);
        if (d > 1e-4 * (sc + 1))
            TT_FAIL_("%s %s: KV reuse differs at %d by %g", arch, gguf_ggml_type_name(type), i, d);
    }
    // logits are finite and not all equal
    TT_ASSERT(isfinite(batched[0]) && batched[0] != batched[1]);
    // the context refuses to overflow
    kith_ctx_truncate(c, 0);
    static int32_t many[200];
    TT_EQ(kith_eval(c, many, 200, 0), KITH_ERANGE);
    int32_t bad = V;
    TT_EQ(kith_eval(c, &bad, 1, 0), KITH_EINVAL);
    free(batched);
    free(single);
    kith_ctx_free(c);
    kith_model_free(m);
}

TT_TEST(llama_types)
{
    uint32_t types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
                        GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0] && !tt_failed_current; i++)
        check("llama", types[i], 0, 2);
}

TT_TEST(llama_tied_one_thread)
{
    check("llama", GGML_TYPE_Q8_0, 1, 1);
}

TT_TEST(qwen2)
{
    check("qwen2", GGML_TYPE_F32, 0, 2);
    if (!tt_failed_current)
        check("qwen2", GGML_TYPE_Q4_K, 1, 2);
}

TT_TEST(generate_and_embed)
{
    char path[256], err[256];
    TT_OK(make_model("llama", GGML_TYPE_Q8_0, 0, path, sizeof path));
    kith_model *m = NULL;
    kith_ctx *c = NULL;
    TT_OK(kith_model_load(path, &m, err, sizeof err));
    unlink(path);
    TT_OK(kith_ctx_new(m, NULL, &c));
    struct kith_gen_params gp;
    kith_gen_params_init(&gp);
    gp.max_tokens = 12;
    gp.seed = 42;
    char *a = NULL, *b = NULL;
    struct kith_gen_stats st = {.size = sizeof st};
    TT_OK(kith_generate(c, "hello", &gp, &a, &st));
    TT_OK(kith_generate(c, "hello", &gp, &b, NULL));
    TT_STREQ(a, b); /* same seed, same text */
    TT_ASSERT(st.n_gen <= 12 && st.n_prompt >= 1);
    kith_free(a);
    kith_free(b);
    float e1[64], e2[64];
    TT_OK(kith_embed(c, "hello world", e1, 64));
    TT_OK(kith_embed(c, "hello world", e2, 64));
    double norm = 0;
    for (int i = 0; i < 64; i++) {
        TT_NEAR(e1[i], e2[i], 1e-6);
        norm += (double)e1[i] * e1[i];
    }
    TT_NEAR(norm, 1.0, 1e-4);
    char *chat = NULL;
    struct kith_chat_msg msgs[] = {{"system", "be brief"}, {"user", "hi"}};
    TT_OK(kith_chat_format(m, msgs, 2, 1, &chat));
    TT_STREQ(chat, "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                   "<|im_start|>assistant\n");
    kith_free(chat);
    kith_ctx_free(c);
    kith_model_free(m);
}

TT_TEST(bad_files)
{
    char err[256];
    kith_model *m = (kith_model *)1;
    TT_ASSERT(kith_model_load("/nonexistent.gguf", &m, err, sizeof err) != 0);
    TT_ASSERT(m == NULL);
    TT_ASSERT(strlen(err) > 0);
}

TT_MAIN(TT_CASE(llama_types), TT_CASE(llama_tied_one_thread), TT_CASE(qwen2),
        TT_CASE(generate_and_embed), TT_CASE(bad_files))

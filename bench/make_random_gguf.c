/*
 * make_random_gguf: writes a random-weight llama (or qwen2) GGUF of a given
 * shape and type, for repeatable speed measurements (kith ai bench, and
 * llama.cpp's llama-bench on the same file).
 *   bench_make_random_gguf OUT [--dim 1024] [--layers 12] [--ff 2816]
 *       [--vocab 32000] [--heads 16] [--kv-heads 16] [--type Q8_0] [--arch llama] [--seed 1]
 * The defaults are the 220M-parameter shape of issue 5's targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/engine.h"
#include "ai/quant.h"
#include "kith/kith.h"

int main(int argc, char **argv)
{
    struct ai_random_shape s = {.arch = "llama", .dim = 1024, .n_layer = 12, .n_head = 16,
                                .n_head_kv = 16, .ff = 2816, .vocab = 32000, .ctx = 4096,
                                .type = GGML_TYPE_Q8_0, .seed = 1};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *ip = !strcmp(a, "--dim") ? &s.dim : !strcmp(a, "--layers") ? &s.n_layer
                : !strcmp(a, "--ff") ? &s.ff : !strcmp(a, "--vocab") ? &s.vocab
                : !strcmp(a, "--heads") ? &s.n_head : !strcmp(a, "--kv-heads") ? &s.n_head_kv
                : NULL;
        if (ip && v) {
            *ip = atoi(v);
            i++;
        } else if (!strcmp(a, "--type") && v) {
            uint32_t t;
            for (t = 0; t < GGML_TYPE_COUNT; t++)
                if (gguf_ggml_type_name(t) && !strcmp(gguf_ggml_type_name(t), v))
                    break;
            if (t == GGML_TYPE_COUNT || !quant_can_quantize(t)) {
                fprintf(stderr, "kith: error: type '%s' cannot be written\n", v);
                return 1;
            }
            s.type = t;
            i++;
        } else if (!strcmp(a, "--arch") && v) {
            s.arch = argv[++i];
        } else if (!strcmp(a, "--seed") && v) {
            s.seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--tied")) {
            s.tied = 1;
        } else if (a[0] != '-' && !out) {
            out = a;
        } else {
            fprintf(stderr, "usage: %s OUT [--dim N] [--layers N] [--ff N] [--vocab N] [--heads N]"
                            " [--kv-heads N] [--type T] [--arch A] [--seed S] [--tied]\n", argv[0]);
            return a[0] == '-' && !strcmp(a, "--help") ? 0 : 1;
        }
    }
    if (!out) {
        fprintf(stderr, "kith: error: OUT path missing (see --help)\n");
        return 1;
    }
    int rc = ai_random_model_write(&s, out, NULL, NULL);
    if (rc) {
        fprintf(stderr, "kith: error: cannot write '%s': %s\n", out, kith_strerror(rc));
        return 1;
    }
    return 0;
}

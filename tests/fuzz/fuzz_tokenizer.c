/*
 * Fuzz target: tokenize arbitrary bytes (invalid UTF-8, NULs, special-token
 * texts) with a SentencePiece and a byte-level BPE vocabulary from
 * tests/data/vocab, then detokenize. The first input byte picks the vocab and
 * the flags. Vocabs are loaded once ($KITH_SRC or the source tree this file
 * was built from).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith/ai.h"
#include "kith/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kith_vocab *vocabs[3];

static kith_vocab *load(const char *name)
{
    char path[2048], err[256], root[1024];
    const char *src = getenv("KITH_SRC");
    kith_vocab *v = NULL;
    if (!src) {
        /* the replay test runs without KITH_SRC: use this file's tree */
        const char *tail = strstr(__FILE__, "tests/fuzz/fuzz_tokenizer.c");
        size_t n = tail ? (size_t)(tail - __FILE__) : 0;
        if (n >= sizeof(root))
            n = 0;
        memcpy(root, __FILE__, n);
        root[n] = 0;
        if (!n)
            snprintf(root, sizeof(root), ".");
        src = root;
    }
    snprintf(path, sizeof(path), "%s/tests/data/vocab/%s", src, name);
    if (kith_vocab_load(path, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s (set KITH_SRC to the repository)\n", err);
        exit(1);
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vocabs[0]) {
        vocabs[0] = load("stories260K-vocab.gguf");
        vocabs[1] = load("ggml-vocab-gpt-2.gguf");
        vocabs[2] = load("ggml-vocab-deepseek-llm.gguf");
    }
    if (size < 1)
        return 0;
    kith_vocab *v = vocabs[data[0] % 3];
    unsigned flags = (data[0] >> 2) & 3;
    int32_t *ids = NULL;
    size_t n = 0;
    if (kith_tokenize_ex(v, (const char *)data + 1, size - 1, flags, &ids, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= kith_vocab_n_tokens(v))
            abort();
    char *text = NULL;
    size_t len = 0;
    if (kith_detokenize(v, ids, n, KITH_DETOKENIZE_SPECIAL, &text, &len) != 0)
        abort(); /* every id came from the vocab */
    kith_free(text);
    kith_free(ids);
    return 0;
}

/*
 * Fuzz target: the GGUF reader over arbitrary bytes (gguf_open_mem), then a
 * walk over everything it accepted: every metadata entry through every
 * getter, every array element, every tensor's bytes. Any crash, overread or
 * undefined behaviour is a bug; errors are the expected outcome.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai/gguf.h"
#include "ai/tokenizer.h"
#include "kith/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    char err[256];
    volatile unsigned sink = 0;
    if (gguf_open_mem(data, size, &f, err, sizeof(err)) != 0)
        return 0;
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i), *s;
        size_t len;
        int64_t i64;
        uint64_t u64;
        double d;
        uint32_t u32;
        int32_t i32;
        float f32;
        int b;
        struct gguf_arr a;
        (void)gguf_kv_get_i64(f, i, &i64);
        (void)gguf_kv_get_u64(f, i, &u64);
        (void)gguf_kv_get_f64(f, i, &d);
        (void)gguf_get_u32(f, key, &u32);
        (void)gguf_get_i32(f, key, &i32);
        (void)gguf_get_f32(f, key, &f32);
        (void)gguf_get_bool(f, key, &b);
        if (gguf_kv_get_str(f, i, &s, &len) == 0)
            for (size_t k = 0; k < len; k++)
                sink += (unsigned char)s[k];
        if (gguf_kv_get_arr(f, i, &a) == 0) {
            for (uint64_t k = 0; k < a.n && k < 4096; k++) {
                if (gguf_arr_str(&a, k, &s, &len) == 0 && len)
                    sink += (unsigned char)s[len - 1];
                (void)gguf_arr_get_i64(&a, k, &i64);
                (void)gguf_arr_get_f32(&a, k, &f32);
            }
            (void)gguf_arr_get_i32(&a, a.n, &i32); /* out of range on purpose */
        }
        if (gguf_find_key(f, key) != (long)i)
            abort(); /* the index must find its own key */
    }
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *p = t->data;
        if (t->nbytes)
            sink += p[0] + p[t->nbytes - 1];
        if (gguf_find_tensor(f, t->name) != t)
            abort();
    }
    /* a file that carries a tokenizer must load it or fail cleanly */
    struct tokenizer *tok = NULL;
    if (tokenizer_load(f, &tok, err, sizeof(err)) == 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (tokenizer_tokenize(tok, "Hello world <s> 123", 19, KITH_TOKENIZE_ADD_SPECIAL |
                               KITH_TOKENIZE_PARSE_SPECIAL, &ids, &n) == 0)
            kith_free(ids);
        tokenizer_free(tok);
    }
    gguf_close(f);
    (void)sink;
    return 0;
}

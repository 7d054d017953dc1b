/*
 * Tokenizer tests: every test vector of tests/data/vocab (from llama.cpp:
 * X.gguf.inp strings, X.gguf.out ids, no BOS/EOS) must give exactly the same
 * ids; plus BOS/EOS defaults, special tokens, pieces and detokenization,
 * invalid UTF-8, and the tokenizer of the bundled stories260K model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/gguf.h"
#include "ai/tokenizer.h"
#include "kith/ai.h"
#include "kith/util.h"
#include "tt.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

static void data_path(char *buf, size_t cap, const char *name)
{
    const char *src = getenv("KITH_SRC");
    snprintf(buf, cap, "%s/tests/data/vocab/%s", src ? src : ".", name);
}

/* Runs all vectors of one vocab (in @dir, or tests/data/vocab when NULL);
 * returns the number of failing cases, -1 if the files are missing. */
static int run_vectors_in(const char *dir, const char *name, int *n_cases)
{
    char path[1024], err[256];
    size_t inp_len, out_len;
    kith_vocab *v = NULL;
    int fails = 0;

    if (dir)
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    else
        data_path(path, sizeof(path), name);
    if (kith_vocab_load(path, &v, err, sizeof(err)) != 0) {
        fprintf(stderr, "  %s: %s\n", name, err);
        return -1;
    }
    char ip[1100], op[1100];
    snprintf(ip, sizeof(ip), "%s.inp", path);
    snprintf(op, sizeof(op), "%s.out", path);
    char *inp = read_all(ip, &inp_len), *out = read_all(op, &out_len);
    if (!inp || !out) {
        free(inp);
        free(out);
        kith_vocab_free(v);
        return -1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *o = out;
    *n_cases = 0;
    for (;;) {
        char *e = strstr(p, sep);
        if (!e)
            break;
        char *ol = o, *oe = strchr(o, '\n');
        if (!oe)
            oe = o + strlen(o);
        /* expected ids */
        int32_t want[512];
        size_t nw = 0;
        for (char *q = ol; q < oe && nw < 512;) {
            char *end;
            long id = strtol(q, &end, 10);
            if (end == q)
                break;
            want[nw++] = (int32_t)id;
            q = end;
        }
        int32_t *got = NULL;
        size_t ng = 0;
        int rc = kith_tokenize_ex(v, p, (size_t)(e - p), 0, &got, &ng);
        int same = rc == 0 && ng == nw && (nw == 0 || memcmp(got, want, nw * 4) == 0);
        if (!same) {
            fails++;
            fprintf(stderr, "  %s case %d: '%.*s'\n    want:", name, *n_cases, (int)(e - p), p);
            for (size_t i = 0; i < nw; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n    got: ");
            for (size_t i = 0; i < ng; i++)
                fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n");
        } else {
            /* round trip: the pieces give back the text (minus SPM's dummy space) */
            char *txt = NULL;
            size_t tl = 0;
            if (kith_detokenize(v, got, ng, 0, &txt, &tl) == 0 &&
                (tl != (size_t)(e - p) || memcmp(txt, p, tl) != 0) && !strstr(name, "spm") &&
                !strstr(name, "phi")) {
                /* BPE vocabs round-trip exactly; SPM ones may differ on the
                 * leading space only, checked below */
                fails++;
                fprintf(stderr, "  %s case %d: detokenize gave '%s'\n", name, *n_cases, txt);
            }
            kith_free(txt);
        }
        kith_free(got);
        (*n_cases)++;
        p = e + sizeof(sep) - 1;
        o = *oe ? oe + 1 : oe;
    }
    free(inp);
    free(out);
    kith_vocab_free(v);
    return fails;
}

static int run_vectors(const char *name, int *n_cases)
{
    return run_vectors_in(NULL, name, n_cases);
}

#define VECTORS(fn, file)                                                                          \
    TT_TEST(fn)                                                                                    \
    {                                                                                              \
        int n = 0;                                                                                 \
        int f = run_vectors(file, &n);                                                             \
        TT_ASSERT(f >= 0);                                                                         \
        TT_EQ(f, 0);                                                                               \
        TT_ASSERT(n > 10);                                                                         \
        printf("  %s: %d vectors\n", file, n);                                                     \
    }

VECTORS(vectors_llama_spm, "ggml-vocab-llama-spm.gguf")
VECTORS(vectors_phi3, "ggml-vocab-phi-3.gguf")
VECTORS(vectors_gpt2, "ggml-vocab-gpt-2.gguf")
VECTORS(vectors_starcoder, "ggml-vocab-starcoder.gguf")
VECTORS(vectors_deepseek_llm, "ggml-vocab-deepseek-llm.gguf")

/* Vocab GGUFs that llama.cpp keeps but ../shared does not (llama-bpe, qwen2 ...)
 * are tested when present (tests/data/vocab/extra/ or $KITH_VOCAB_EXTRA), e.g.
 * made by scripts from tokenizer.json; skipped with a message otherwise. */
TT_TEST(vectors_extra)
{
    static const char *const names[] = {
        "llama-bpe", "qwen2",  "command-r", "deepseek-r1-qwen", "chameleon",    "roberta-bpe",
        "falcon",    "mpt",    "refact",    "deepseek-coder",   "starcoder",    "gpt-2",
        "bert-bge",  "aquila", "baichuan",  "gpt-neox",         "deepseek-llm", "phi-3"};
    const char *env = getenv("KITH_VOCAB_EXTRA");
    char dir[1024];
    if (env)
        snprintf(dir, sizeof(dir), "%s", env);
    else
        data_path(dir, sizeof(dir), "extra");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char rel[256], path[1300];
        snprintf(rel, sizeof(rel), "ggml-vocab-%s.gguf", names[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        FILE *f = fopen(path, "rb");
        if (!f) {
            printf("  skip %s: no vocab GGUF\n", names[i]);
            continue;
        }
        fclose(f);
        int n = 0;
        int fails = run_vectors_in(dir, rel, &n);
        if (fails < 0) {
            printf("  skip %s: no test vectors beside it\n", names[i]);
            continue;
        }
        printf("  %s: %d cases\n", names[i], n);
        TT_EQ(fails, 0);
    }
}

static kith_vocab *load(const char *name)
{
    char path[1024], err[256];
    kith_vocab *v = NULL;
    data_path(path, sizeof(path), name);
    if (kith_vocab_load(path, &v, err, sizeof(err)) != 0)
        fprintf(stderr, "  %s: %s\n", name, err);
    return v;
}

TT_TEST(bos_eos_defaults)
{
    kith_vocab *spm = load("ggml-vocab-llama-spm.gguf");
    kith_vocab *gpt = load("ggml-vocab-gpt-2.gguf");
    int32_t *ids = NULL;
    size_t n = 0;
    TT_ASSERT(spm && gpt);
    /* SentencePiece: BOS added (metadata says so; it is also the default) */
    TT_OK(kith_tokenize(spm, "Hello", 5, 1, &ids, &n));
    TT_ASSERT(n >= 2);
    TT_EQ(ids[0], 1);
    TT_EQ(kith_vocab_bos(spm), 1);
    TT_EQ(kith_vocab_eos(spm), 2);
    TT_ASSERT(kith_vocab_is_eog(spm, 2));
    kith_free(ids);
    /* GPT-2: no BOS unless the metadata asks */
    TT_OK(kith_tokenize(gpt, "Hello", 5, 1, &ids, &n));
    TT_EQ(n, 1);
    TT_EQ(ids[0], 15496);
    kith_free(ids);
    /* empty text: no tokens, but a valid array */
    TT_OK(kith_tokenize(gpt, "", 0, 0, &ids, &n));
    TT_EQ(n, 0);
    TT_ASSERT(ids != NULL);
    kith_free(ids);
    kith_vocab_free(spm);
    kith_vocab_free(gpt);
}

TT_TEST(special_tokens)
{
    kith_vocab *v = load("ggml-vocab-gpt-2.gguf");
    int32_t *ids = NULL;
    size_t n = 0;
    const char *txt = "a<|endoftext|>b";
    TT_ASSERT(v);
    /* not parsed by default: plain text */
    TT_OK(kith_tokenize_ex(v, txt, strlen(txt), 0, &ids, &n));
    TT_ASSERT(n > 3);
    for (size_t i = 0; i < n; i++)
        TT_ASSERT(ids[i] != 50256);
    kith_free(ids);
    /* parsed on request: one token */
    TT_OK(kith_tokenize_ex(v, txt, strlen(txt), KITH_TOKENIZE_PARSE_SPECIAL, &ids, &n));
    TT_EQ(n, 3);
    TT_EQ(ids[1], 50256);
    /* detokenize: hidden without SPECIAL, shown with it */
    char *s = NULL;
    size_t l = 0;
    TT_OK(kith_detokenize(v, ids, n, 0, &s, &l));
    TT_STREQ(s, "ab");
    kith_free(s);
    TT_OK(kith_detokenize(v, ids, n, KITH_DETOKENIZE_SPECIAL, &s, &l));
    TT_STREQ(s, txt);
    kith_free(s);
    kith_free(ids);

    /* SPM: the dummy space prefix comes back after a special token */
    kith_vocab *spm = load("ggml-vocab-llama-spm.gguf");
    TT_ASSERT(spm);
    TT_OK(kith_tokenize_ex(spm, "<s>Hi", 5, KITH_TOKENIZE_PARSE_SPECIAL, &ids, &n));
    TT_ASSERT(n >= 2);
    TT_EQ(ids[0], 1);
    const char *p;
    size_t pl;
    TT_OK(kith_token_piece(spm, ids[1], 0, &p, &pl));
    TT_ASSERT(pl >= 1 && p[0] == ' ');
    kith_free(ids);
    kith_vocab_free(spm);
    kith_vocab_free(v);
}

TT_TEST(pieces)
{
    kith_vocab *spm = load("ggml-vocab-llama-spm.gguf");
    kith_vocab *gpt = load("ggml-vocab-gpt-2.gguf");
    const char *p;
    size_t l;
    TT_ASSERT(spm && gpt);
    TT_OK(kith_token_piece(spm, 13, 0, &p, &l)); /* <0x0A> */
    TT_EQ(l, 1);
    TT_EQ(p[0], '\n');
    TT_OK(kith_token_piece(spm, 1, 0, &p, &l)); /* <s>: control, hidden */
    TT_EQ(l, 0);
    TT_OK(kith_token_piece(spm, 1, 1, &p, &l));
    TT_EQ(l, 3);
    TT_EQ(kith_token_piece(spm, -1, 0, &p, &l), KITH_ERANGE);
    TT_EQ(kith_token_piece(spm, 32000, 0, &p, &l), KITH_ERANGE);
    TT_OK(kith_token_piece(gpt, 220, 0, &p, &l)); /* "Ġ" */
    TT_EQ(l, 1);
    TT_EQ(p[0], ' ');
    kith_vocab_free(spm);
    kith_vocab_free(gpt);
}

/* Arbitrary bytes (invalid UTF-8, NULs, lone continuation bytes) tokenize
 * without error, and byte-level vocabs still round-trip the valid parts. */
TT_TEST(invalid_utf8)
{
    static const char *const names[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf",
                                        "ggml-vocab-deepseek-llm.gguf",
                                        "ggml-vocab-starcoder.gguf"};
    static const char bad[] =
        "a\xff\xfe\x80 b\xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \0z\xc0\x80";
    for (size_t i = 0; i < 4; i++) {
        kith_vocab *v = load(names[i]);
        int32_t *ids = NULL;
        size_t n = 0;
        TT_ASSERT(v);
        TT_OK(kith_tokenize_ex(v, bad, sizeof(bad) - 1, KITH_TOKENIZE_ADD_SPECIAL, &ids, &n));
        TT_ASSERT(n > 0);
        for (size_t k = 0; k < n; k++)
            TT_ASSERT(ids[k] >= 0 && ids[k] < kith_vocab_n_tokens(v));
        kith_free(ids);
        kith_vocab_free(v);
    }
    /* SPM: a lone invalid byte falls back to its <0xXX> token */
    kith_vocab *v = load("ggml-vocab-llama-spm.gguf");
    int32_t *ids = NULL;
    size_t n = 0;
    TT_ASSERT(v);
    TT_OK(kith_tokenize_ex(v, "\xff", 1, 0, &ids, &n));
    TT_EQ(n, 2); /* dummy-prefix space, then the byte */
    TT_EQ(ids[1], 3 + 0xff);
    kith_free(ids);
    kith_vocab_free(v);
}

/* The bundled model's tokenizer (SentencePiece, vocab 512): taken from the
 * model itself when ../shared is there, else from the vocab-only copy. */
TT_TEST(stories260k)
{
    char path[1024], err[256];
    const char *sh = getenv("KITH_SHARED");
    kith_vocab *v = NULL;
    snprintf(path, sizeof(path), "%s/models/stories260K-f32.gguf", sh ? sh : "../shared");
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else
        data_path(path, sizeof(path), "stories260K-vocab.gguf");
    TT_OK(kith_vocab_load(path, &v, err, sizeof(err)));
    TT_EQ(kith_vocab_n_tokens(v), 512);
    TT_EQ(kith_vocab_bos(v), 1);
    TT_EQ(kith_vocab_eos(v), 2);
    static const char *const texts[] = {
        "Once upon a time, there was a little girl named Lily.",
        "  Two  spaces\nand a newline\t tab",
        "Unicode: caf\xc3\xa9 \xf0\x9f\xa6\x99 \xe6\x97\xa5\xe6\x9c\xac",
    };
    for (size_t i = 0; i < 3; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        char *s = NULL;
        size_t l = 0;
        TT_OK(kith_tokenize(v, texts[i], strlen(texts[i]), 1, &ids, &n));
        TT_ASSERT(n > 1);
        TT_EQ(ids[0], 1);
        /* every piece is a real token of the 512, and the text comes back */
        TT_OK(kith_detokenize(v, ids + 1, n - 1, 0, &s, &l));
        TT_STREQ(s, texts[i]);
        kith_free(s);
        kith_free(ids);
    }
    /* "Once" merges into few tokens: the merges actually ran */
    int32_t *ids = NULL;
    size_t n = 0;
    TT_OK(kith_tokenize(v, "Once upon a time", 16, 0, &ids, &n));
    TT_ASSERT(n > 0 && n < 10);
    kith_free(ids);
    kith_vocab_free(v);
}

/* Malformed tokenizer metadata gets an error, not a crash. */
TT_TEST(bad_metadata)
{
    static const char *const toks[] = {"a", "b", "ab"};
    for (int c = 0; c < 6; c++) {
        gguf_writer *w = NULL;
        void *buf = NULL;
        size_t len = 0;
        gguf_file *f = NULL;
        struct tokenizer *t = NULL;
        char err[256] = "";
        float scores[1] = {0};
        TT_OK(gguf_writer_new(&w));
        if (c != 0)
            gguf_writer_add_str(w, "tokenizer.ggml.model",
                                c == 1   ? "bert"
                                : c == 5 ? "gpt2"
                                         : "llama");
        if (c == 2)
            gguf_writer_add_u32(w, "tokenizer.ggml.tokens", 3);
        else if (c != 3)
            gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3);
        if (c == 4)
            gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 1);
        if (c == 5)
            gguf_writer_add_str(w, "tokenizer.ggml.pre", "no-such-pre");
        TT_OK(gguf_writer_write_mem(w, NULL, NULL, &buf, &len));
        TT_OK(gguf_open_mem(buf, len, &f, err, sizeof(err)));
        int rc = tokenizer_load(f, &t, err, sizeof(err));
        TT_ASSERT(rc < 0);
        TT_ASSERT(t == NULL);
        TT_ASSERT(err[0] != 0);
        gguf_close(f);
        kith_free(buf);
        gguf_writer_free(w);
    }
}

TT_MAIN(TT_CASE(vectors_llama_spm), TT_CASE(vectors_phi3), TT_CASE(vectors_gpt2),
        TT_CASE(vectors_starcoder), TT_CASE(vectors_deepseek_llm), TT_CASE(vectors_extra),
        TT_CASE(bos_eos_defaults), TT_CASE(special_tokens), TT_CASE(pieces), TT_CASE(invalid_utf8),
        TT_CASE(stories260k), TT_CASE(bad_metadata))

/*
 * tokenizer.h: internal API of the tokenizers built from GGUF metadata:
 * SentencePiece-style ("llama": scores, byte fallback <0xXX>) and byte-level
 * BPE ("gpt2": merges, a pre-tokenizer regex chain chosen by
 * tokenizer.ggml.pre). Behaviour follows llama.cpp's llama-vocab.cpp so that
 * ids match what the GGUF's users get there. The public face is kith_vocab in
 * include/kith/ai.h; the engine uses these calls directly.
 *
 * Thread rule: a tokenizer is immutable after load; any number of threads may
 * tokenize with it at once (each call allocates its own scratch).
 */
#ifndef KITH_AI_TOKENIZER_H
#define KITH_AI_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "ai/gguf.h"
#include "kith/ai.h"

struct tokenizer;

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum tok_type {
    TOK_UNDEFINED = 0,
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
};

/* Builds the tokenizer of an open GGUF (only its tokenizer.* metadata is
 * read; everything needed is copied, so @f may be closed afterwards).
 * Returns KITH_ECORRUPT (missing/malformed metadata), KITH_EUNSUPPORTED
 * (tokenizer model or pre-tokenizer not handled), KITH_ENOMEM; @err names the
 * problem. The caller frees *out with tokenizer_free(). */
int tokenizer_load(const gguf_file *f, struct tokenizer **out, char *err, size_t errlen);
/* Same thing under the name the design notes use. */
int tokenizer_from_gguf(const gguf_file *f, struct tokenizer **out, char *err, size_t errlen);
void tokenizer_free(struct tokenizer *t);

size_t tokenizer_n_vocab(const struct tokenizer *t);
/* Special ids; -1 when the vocabulary has none. */
int tokenizer_bos(const struct tokenizer *t);
int tokenizer_eos(const struct tokenizer *t);
/* End-of-turn (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>...), or -1. */
int tokenizer_eot(const struct tokenizer *t);
/* Whether tokenize with add_special prepends BOS / appends EOS. */
int tokenizer_add_bos(const struct tokenizer *t);
int tokenizer_add_eos(const struct tokenizer *t);
/* Nonzero if generation should stop at @id (EOS, EOT, EOM ...). */
int tokenizer_is_eog(const struct tokenizer *t, int32_t id);
/* "llama" or "gpt2"; and tokenizer.ggml.pre ("default" when absent). Static / owned by @t. */
const char *tokenizer_model_name(const struct tokenizer *t);
const char *tokenizer_pre_name(const struct tokenizer *t);

/* Tokenizes @len bytes of @text (any bytes: invalid UTF-8 does not fail).
 * @flags: KITH_TOKENIZE_* from kith/ai.h. *ids is a new array the caller
 * frees with kith_free() (non-NULL even when *n is 0). */
int tokenizer_tokenize(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
                       int32_t **ids, size_t *n);

/* The raw vocabulary text of @id (e.g. "▁the", "Ġthe", "<0x0A>"), borrowed
 * from @t; NULL if @id is out of range. */
const char *tokenizer_text(const struct tokenizer *t, int32_t id, size_t *len);
/* The bytes @id stands for in output text ("▁" -> " ", <0x0A> -> "\n", GPT-2
 * byte-unicode undone). Control tokens give their text only with @special,
 * else "". Borrowed from @t. KITH_ERANGE for a bad id. */
int tokenizer_piece(const struct tokenizer *t, int32_t id, int special, const char **s,
                    size_t *len);
/* Id of the token whose text is exactly @s (@len bytes), or -1. */
int32_t tokenizer_find(const struct tokenizer *t, const char *s, size_t len);
/* Token type (enum tok_type) of @id; TOK_UNDEFINED if out of range. */
int tokenizer_type(const struct tokenizer *t, int32_t id);

/* Text of @n ids; see kith_detokenize. *out (NUL-terminated) is freed by the caller with kith_free(). */
int tokenizer_detokenize(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                         char **out, size_t *len);


#ifdef TOKENIZER_PRIVATE
/* ---- shared by tokenizer*.c only ---- */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum { TOKENIZER_SPM, TOKENIZER_BPE };
#define TOKENIZER_MAX_RE 8

struct tok_entry {
    uint32_t off, len;   /* text in blob */
    uint32_t poff, plen; /* output piece in pieces */
    float score;
    uint8_t type;        /* enum tok_type */
};

struct tokenizer {
    int kind;
    char *pre;
    size_t n;
    struct tok_entry *toks;
    char *blob;
    char *pieces;
    uint32_t *map;       /* text -> id + 1, open addressing */
    size_t map_cap;
    /* BPE merges: rank r is (left, right); a hash of (left, right) -> r + 1 */
    struct tok_merge { uint32_t loff, llen, roff, rlen; } *merges;
    size_t n_merges;
    char *mblob;
    uint32_t *mmap_;
    size_t mmap_cap;
    int32_t bos, eos, eot, eom, unk;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t *special;    /* control/user-defined/unknown ids, longest text first */
    size_t n_special;
    int32_t *eog;
    size_t n_eog;
    int32_t byte_tok[256]; /* SPM byte fallback <0xXX>, -1 if absent */
    pcre2_code *re[TOKENIZER_MAX_RE];
    int n_re;
};

/* tokenizer_bpe.c */
int tok_bpe_init(struct tokenizer *t, const gguf_file *f, char *err, size_t errlen);
int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids,
                   size_t *n, size_t *cap);
/* Bytes of GPT-2's byte-unicode decoding of @s into @out (at most @len bytes). */
size_t tok_bpe_decode(const char *s, size_t len, char *out);
/* Hash of @len bytes (FNV-1a), shared by the lookup tables. */
uint64_t tok_hash(const char *s, size_t len, uint64_t h);
#define TOK_HASH_SEED 1469598103934665603ull
int tok_push(int32_t **ids, size_t *n, size_t *cap, int32_t id);
#endif

#endif

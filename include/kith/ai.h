/*
 * kith on-device inference: GGUF models (llama, qwen2), tokenizers, sampling,
 * chat templates and embeddings. Depends on nothing else in kith, so it can
 * be used alone as an inference library.
 */
#ifndef KITH_AI_H
#define KITH_AI_H

#include <stddef.h>
#include <stdint.h>

#include "kith/err.h"

/* ==== tokenizer (owned by the tokenizer work; keep edits inside this block) ==== */

/*
 * A vocabulary turns text into token ids and back, as the GGUF's metadata
 * says: SentencePiece-style ("llama") or byte-level BPE ("gpt2") with the
 * pre-tokenizer named by tokenizer.ggml.pre, giving the ids llama.cpp gives.
 * Thread rule: a kith_vocab is immutable after load; any number of threads
 * may use it at once.
 */
typedef struct kith_vocab kith_vocab;

/* Flags of kith_tokenize_ex. */
enum kith_tokenize_flags {
    /* Add BOS/EOS as the model's metadata says (tokenizer.ggml.add_bos_token
     * ..., else llama.cpp's defaults: SentencePiece adds BOS, BPE does not). */
    KITH_TOKENIZE_ADD_SPECIAL = 1 << 0,
    /* Turn the text of control tokens ("<|eot_id|>", "<s>") into those
     * tokens. Off by default: text from documents must not be able to forge
     * turn markers. User-defined tokens are always matched. */
    KITH_TOKENIZE_PARSE_SPECIAL = 1 << 1,
};

/* Flags of kith_detokenize. */
enum kith_detokenize_flags {
    KITH_DETOKENIZE_SPECIAL = 1 << 0,      /* render control tokens' text */
    KITH_DETOKENIZE_KEEP_SPACE = 1 << 1,   /* keep SentencePiece's leading space */
};

/* Loads the vocabulary of the GGUF at @path (a model or a vocab-only file).
 * On failure *out is NULL, nothing needs freeing, and @err (if non-NULL)
 * names what is wrong. Returns KITH_EIO, KITH_ECORRUPT, KITH_EVERSION,
 * KITH_EUNSUPPORTED or KITH_ENOMEM. The caller frees *out with kith_vocab_free(). */
KITH_API int kith_vocab_load(const char *path, kith_vocab **out, char *err, size_t errlen);
/* Frees @v; NULL is fine. */
KITH_API void kith_vocab_free(kith_vocab *v);

/* Number of tokens. */
KITH_API int32_t kith_vocab_n_tokens(const kith_vocab *v);
/* Beginning/end-of-sequence ids, or -1 if the vocabulary has none. */
KITH_API int32_t kith_vocab_bos(const kith_vocab *v);
KITH_API int32_t kith_vocab_eos(const kith_vocab *v);
/* Nonzero if generation ends at @id (EOS, end-of-turn ...). */
KITH_API int kith_vocab_is_eog(const kith_vocab *v, int32_t id);

/* Tokenizes @len bytes of @text (any bytes; invalid UTF-8 is not an error).
 * With @add_special, BOS/EOS are added as the metadata says; control-token
 * text is not parsed (see KITH_TOKENIZE_PARSE_SPECIAL). On success *ids is a
 * new array of *n ids that the caller frees with kith_free() (non-NULL even
 * when *n is 0); on failure *ids is NULL. Returns 0 or KITH_ENOMEM. */
KITH_API int kith_tokenize(const kith_vocab *v, const char *text, size_t len, int add_special,
                           int32_t **ids, size_t *n);
/* As kith_tokenize with KITH_TOKENIZE_* @flags. */
KITH_API int kith_tokenize_ex(const kith_vocab *v, const char *text, size_t len, unsigned flags,
                              int32_t **ids, size_t *n);

/* The bytes token @id stands for (SentencePiece "▁" as a space, byte
 * tokens as their byte, GPT-2's byte-unicode mapping undone). A piece may be
 * part of a UTF-8 character. Control tokens give their text if @special,
 * else an empty piece. *piece is borrowed from @v and not NUL-terminated.
 * Returns 0 or KITH_ERANGE for an id out of range. */
KITH_API int kith_token_piece(const kith_vocab *v, int32_t id, int special, const char **piece,
                              size_t *len);

/* The text of @n ids: the pieces joined, SentencePiece's leading space
 * dropped unless KITH_DETOKENIZE_KEEP_SPACE, control tokens only with
 * KITH_DETOKENIZE_SPECIAL. *out is NUL-terminated (*len bytes before the
 * NUL) and freed by the caller with kith_free(). KITH_ERANGE for a bad id. */
KITH_API int kith_detokenize(const kith_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                             char **out, size_t *len);

/* ==== end tokenizer ==== */

/* ==== model, generation, sampling (owned by the engine work) ==== */

/*
 * A model is a GGUF file mapped read-only (weights are never copied); a
 * context holds what one conversation needs: the KV cache, activations and a
 * thread pool, all allocated once in kith_ctx_new. Several contexts may share
 * one model.
 * Thread rule: a kith_model is immutable after load and may be used by any
 * number of threads; a kith_ctx belongs to one thread at a time, except
 * kith_ctx_cancel(), which any thread may call at any time.
 */
typedef struct kith_model kith_model;
typedef struct kith_ctx kith_ctx;

/* Loads the GGUF model at @path (architectures llama and qwen2). On failure
 * *out is NULL, nothing needs freeing, and @err (if non-NULL, @errlen bytes)
 * names what is wrong. Returns KITH_EIO, KITH_ECORRUPT, KITH_EUNSUPPORTED,
 * KITH_EVERSION or KITH_ENOMEM. The caller frees *out with kith_model_free(). */
KITH_API int kith_model_load(const char *path, kith_model **out, char *err, size_t errlen);
/* Unmaps and frees @m; NULL is fine. Every context on @m must be freed first. */
KITH_API void kith_model_free(kith_model *m);

/* Checks that @path is a well-formed GGUF file that the reader opens: header,
 * metadata and tensor table valid, every tensor's data inside the file. It
 * does not load the model (an architecture kith cannot run still passes), so
 * it is cheap even for large files. Returns 0 or gguf reader errors
 * (KITH_EIO, KITH_ECORRUPT, KITH_EVERSION, KITH_EUNSUPPORTED, KITH_ENOMEM)
 * with @err (if non-NULL) naming the problem. */
KITH_API int kith_gguf_check(const char *path, char *err, size_t errlen);

struct kith_model_info {
    size_t size;            /* set to sizeof(struct kith_model_info) before the call */
    const char *arch;       /* "llama", "qwen2" */
    const char *name;       /* general.name or "" */
    const char *ftype;      /* most common matrix type: "Q4_K", "Q8_0", "F32" ... */
    const char *tokenizer;  /* tokenizer.ggml.model: "llama", "gpt2" */
    const char *chat_template; /* detected template: "llama3", "chatml", ... or "none" */
    uint64_t n_params;
    uint64_t file_bytes;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx_train;
    float rope_base;
};
/* Fills @info (strings are borrowed from @m, valid until kith_model_free). */
KITH_API int kith_model_info(const kith_model *m, struct kith_model_info *info);

struct kith_ctx_params {
    size_t size;    /* sizeof(struct kith_ctx_params) */
    int n_ctx;      /* 0: the model's context length, capped at 4096 */
    int n_threads;  /* 0: physical cores (1 for tiny models, under 2M parameters) */
    int n_batch;    /* tokens per forward call; 0: 256 */
};
KITH_API void kith_ctx_params_init(struct kith_ctx_params *p);
/* New context on @m (@p may be NULL for defaults). The caller frees *out
 * with kith_ctx_free(); @m must outlive it. */
KITH_API int kith_ctx_new(kith_model *m, const struct kith_ctx_params *p, kith_ctx **out);
KITH_API void kith_ctx_free(kith_ctx *c);
/* Context length of @c (tokens). */
KITH_API int kith_ctx_n_ctx(const kith_ctx *c);
/* Threads the kernels of @c run on (kith_ctx_params.n_threads, or the default
 * chosen for the model). */
KITH_API int kith_ctx_threads(const kith_ctx *c);
/* Bytes @c allocated for its KV cache, and for all its buffers (KV cache,
 * activations, logits, RoPE table). Allocated, not resident: pages are only
 * in memory once a position or a batch of that size has used them. */
KITH_API uint64_t kith_ctx_kv_bytes(const kith_ctx *c);
KITH_API uint64_t kith_ctx_mem_bytes(const kith_ctx *c);
/* Asks a running kith_generate/kith_eval on @c to stop (it returns
 * KITH_ECANCELED). Safe from any thread. */
KITH_API void kith_ctx_cancel(kith_ctx *c);

/* Low-level evaluation: appends @n tokens at position kith_ctx_n_past() and
 * runs the model over them. With @all_logits, the logits of every token are
 * kept, else only the last. KITH_ERANGE if the context would overflow. */
KITH_API int kith_eval(kith_ctx *c, const int32_t *tokens, size_t n, int all_logits);
/* Logits (n_vocab floats) of token @i of the last kith_eval (-1: the last).
 * Borrowed; valid until the next call on @c. NULL if @i was not kept. */
KITH_API const float *kith_logits(kith_ctx *c, int i);
KITH_API int kith_ctx_n_past(const kith_ctx *c);
/* Forgets the KV cache from position @n_past on (0 clears it). */
KITH_API void kith_ctx_truncate(kith_ctx *c, int n_past);

/* Called with each piece of generated text as it is produced: UTF-8, whole
 * characters (a token ending inside a character is held back until it is
 * complete). @piece is borrowed for the call. Return nonzero to stop. */
typedef int (*kith_token_fn)(void *ud, const char *piece, size_t len);

struct kith_gen_params {
    size_t size;          /* sizeof(struct kith_gen_params) */
    int max_tokens;       /* new tokens at most; default 256 */
    float temperature;    /* 0: greedy (default 0.8) */
    int top_k;            /* 0: off (default 40) */
    float top_p;          /* 1: off (default 0.95) */
    float min_p;          /* 0: off (default 0.05) */
    float repeat_penalty; /* 1: off (default 1.0) */
    int repeat_last_n;    /* tokens the penalty looks back on (default 64) */
    uint64_t seed;        /* sampling seed (default 0: from the clock) */
    int add_bos;          /* -1: as the model says (default), 0 no, 1 yes */
    int keep_context;     /* 1: continue after the tokens already in the cache */
    int parse_special;    /* 1: control-token text in @prompt becomes tokens (chat) */
    const char *const *stop; /* stop strings (not included in the output) */
    size_t n_stop;
    kith_token_fn on_token; /* streaming callback or NULL */
    void *ud;
    /* Prompt processing progress, after each batch: @done of @total prompt
     * tokens read (a long prompt on a real model takes seconds). Or NULL. */
    void (*on_prompt)(void *ud, size_t done, size_t total);
};
KITH_API void kith_gen_params_init(struct kith_gen_params *p);

struct kith_gen_stats {
    size_t size;       /* sizeof(struct kith_gen_stats) */
    int n_prompt, n_gen;
    double prompt_s, gen_s; /* seconds spent in prompt processing and generation */
    int stop_reason;   /* 0 max tokens, 1 end of sequence, 2 stop string, 3 callback, 4 context full */
};

/* Generates a continuation of @prompt (plain text, tokenized here). *out (if
 * @out is non-NULL) receives the whole generated text, NUL-terminated; the
 * caller frees it with kith_free(). @stats may be NULL. Returns 0,
 * KITH_ECANCELED (the text so far is still returned), KITH_ERANGE (prompt
 * longer than the context) or KITH_ENOMEM. */
KITH_API int kith_generate(kith_ctx *c, const char *prompt, const struct kith_gen_params *p,
                           char **out, struct kith_gen_stats *stats);

/* A chat message; role is "system", "user" or "assistant". */
struct kith_chat_msg {
    const char *role;
    const char *content;
};
/* Renders @msgs with the model's chat template (detected from
 * tokenizer.chat_template; ChatML when unknown), ending with the assistant
 * turn's opening when @add_assistant. The caller frees *out with kith_free(). */
KITH_API int kith_chat_format(const kith_model *m, const struct kith_chat_msg *msgs, size_t n,
                              int add_assistant, char **out);

/* Embedding of @text: the mean over tokens of the final (normed) hidden
 * state, L2-normalised; @out holds n_embd floats (kith_model_info). Uses and
 * then clears the KV cache of @c. */
KITH_API int kith_embed(kith_ctx *c, const char *text, float *out, size_t n_out);

/* Progress of a long operation: @done of @total steps. */
typedef void (*kith_progress_fn)(void *ud, size_t done, size_t total);

/* Writes @out_path: the model at @in_path with its weight matrices converted
 * to @type ("Q8_0", "Q4_0", "Q4_K", "Q4_K_M", "Q6_K", "F16"); metadata and
 * other tensors are copied. @progress (may be NULL) is called per tensor.
 * The output is written through a temporary file, so a failure leaves no
 * partial file. Errors: KITH_EINVAL (unknown type), the reader's and writer's
 * errors, with @err naming the problem. */
KITH_API int kith_model_quantize(const char *in_path, const char *out_path, const char *type,
                                 kith_progress_fn progress, void *ud, char *err, size_t errlen);

/* ==== end model ==== */

#endif

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

/* ==== end tokenizer ==== */

/* ==== model, generation, sampling (owned by the engine work) ==== */

/* ==== end model ==== */

#endif

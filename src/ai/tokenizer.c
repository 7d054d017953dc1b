/*
 * tokenizer.c: vocabulary loading from GGUF metadata, special-token
 * partitioning, the SentencePiece-style ("llama") tokenizer, pieces and
 * detokenization, and the public kith_vocab API. The byte-level BPE side
 * lives in tokenizer_bpe.c. The algorithms follow llama.cpp's llama-vocab.cpp
 * step by step (same merge order, same tie-breaks, same defaults) because the
 * point is to give the ids a model was trained with; where kith departs from
 * it the comment says so.
 */
#define TOKENIZER_PRIVATE
#include "ai/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util_int.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t tok_hash(const char *s, size_t len, uint64_t h)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int tok_push(int32_t **ids, size_t *n, size_t *cap, int32_t id)
{
    if (*n == *cap && kith_grow((void **)ids, cap, *n + 1, sizeof(**ids)))
        return KITH_ENOMEM;
    (*ids)[(*n)++] = id;
    return KITH_OK;
}

/* ---- text -> id ---- */

int32_t tokenizer_find(const struct tokenizer *t, const char *s, size_t len)
{
    size_t mask = t->map_cap - 1;
    for (size_t i = tok_hash(s, len, TOK_HASH_SEED) & mask;; i = (i + 1) & mask) {
        uint32_t v = t->map[i];
        if (!v)
            return -1;
        const struct tok_entry *e = &t->toks[v - 1];
        if (e->len == len && memcmp(t->blob + e->off, s, len) == 0)
            return (int32_t)(v - 1);
    }
}

/* llama.cpp fills its map with token_to_id[text] = i in id order, so the
 * last of duplicate texts wins: do the same. */
static void map_insert(struct tokenizer *t, uint32_t id)
{
    const struct tok_entry *e = &t->toks[id];
    const char *s = t->blob + e->off;
    size_t mask = t->map_cap - 1;
    for (size_t i = tok_hash(s, e->len, TOK_HASH_SEED) & mask;; i = (i + 1) & mask) {
        uint32_t v = t->map[i];
        if (!v) {
            t->map[i] = id + 1;
            return;
        }
        const struct tok_entry *o = &t->toks[v - 1];
        if (o->len == e->len && memcmp(t->blob + o->off, s, e->len) == 0) {
            t->map[i] = id + 1;
            return;
        }
    }
}

/* ---- loading ---- */

static int get_id(const gguf_file *f, const char *key, size_t n, int32_t *id)
{
    uint32_t v;
    int rc = gguf_get_u32(f, key, &v);
    if (rc == KITH_ENOTFOUND)
        return 0;
    /* llama.cpp warns and keeps its default for an id outside the vocabulary. */
    if (rc || v >= n) {
        kith_log(KITH_LOG_WARN, "tokenizer: ignoring bad %s", key);
        return 0;
    }
    *id = (int32_t)v;
    return 0;
}

static int by_len_desc(const void *a, const void *b, void *ud)
{
    const struct tokenizer *t = ud;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = t->toks[x].len, ly = t->toks[y].len;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Texts that mark the end of a turn in common chat models (llama.cpp detects
 * them by text the same way, as converters often leave the metadata out). */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
    "<|end_of_text|>", ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"),
};

static int build_pieces(struct tokenizer *t)
{
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += t->toks[i].len + 1;
    t->pieces = kith_malloc(total ? total : 1);
    if (!t->pieces)
        return KITH_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct tok_entry *e = &t->toks[i];
        const char *s = t->blob + e->off;
        char *out = t->pieces + pos;
        size_t k = 0;
        e->poff = (uint32_t)pos;
        if (t->kind == TOKENIZER_SPM) {
            if (e->type == TOK_NORMAL || e->type == TOK_USER_DEFINED) {
                for (size_t j = 0; j < e->len;) {
                    if (j + 3 <= e->len && memcmp(s + j, "\xe2\x96\x81", 3) == 0) {
                        out[k++] = ' ';
                        j += 3;
                    } else {
                        out[k++] = s[j++];
                    }
                }
            } else if (e->type == TOK_UNKNOWN) {
                memcpy(out, "\xe2\x96\x85", 3); /* llama.cpp renders <unk> as U+2585 */
                k = 3;
            } else if (e->type == TOK_CONTROL) {
                memcpy(out, s, e->len);
                k = e->len;
            } else if (e->type == TOK_BYTE) {
                unsigned b;
                if (e->len == 6 && sscanf(s, "<0x%2X>", &b) == 1)
                    out[k++] = (char)b;
            }
        } else {
            if (e->type == TOK_NORMAL) {
                k = tok_bpe_decode(s, e->len, out);
            } else if (e->type == TOK_CONTROL || e->type == TOK_USER_DEFINED) {
                memcpy(out, s, e->len);
                k = e->len;
            }
        }
        e->plen = (uint32_t)k;
        pos += k;
    }
    return KITH_OK;
}

static int load(const gguf_file *f, struct tokenizer *t, char *err, size_t errlen)
{
    const char *model, *pre = "default", *s;
    size_t model_len, pre_len = 7, len;
    struct gguf_arr toks, scores = {0}, types = {0};
    int have_scores = 0, have_types = 0, rc, v;

    rc = gguf_get_str(f, "tokenizer.ggml.model", &model, &model_len);
    if (rc) {
        seterr(err, errlen, "tokenizer.ggml.model is %s",
               rc == KITH_ENOTFOUND ? "missing" : "not a string");
        return KITH_ECORRUPT;
    }
    if (model_len == 5 && memcmp(model, "llama", 5) == 0) {
        t->kind = TOKENIZER_SPM;
    } else if (model_len == 4 && memcmp(model, "gpt2", 4) == 0) {
        t->kind = TOKENIZER_BPE;
    } else {
        seterr(err, errlen, "tokenizer model '%.*s' is not supported (only llama and gpt2)",
               (int)(model_len > 32 ? 32 : model_len), model);
        return KITH_EUNSUPPORTED;
    }
    if (gguf_get_str(f, "tokenizer.ggml.pre", &s, &len) == 0 && t->kind == TOKENIZER_BPE) {
        pre = s;
        pre_len = len;
    }
    t->pre = kith_strndup(pre, pre_len);
    if (!t->pre)
        return KITH_ENOMEM;

    rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &toks);
    if (rc || toks.type != GGUF_TYPE_STRING) {
        seterr(err, errlen, "tokenizer.ggml.tokens is %s",
               rc == KITH_ENOTFOUND ? "missing" : "not an array of strings");
        return KITH_ECORRUPT;
    }
    if (toks.n == 0 || toks.n > INT32_MAX / 2) {
        seterr(err, errlen, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)toks.n);
        return KITH_ECORRUPT;
    }
    t->n = (size_t)toks.n;
    if (gguf_get_arr(f, "tokenizer.ggml.scores", &scores) == 0) {
        if (scores.n < toks.n || (scores.type != GGUF_TYPE_FLOAT32 &&
                                  scores.type != GGUF_TYPE_FLOAT64)) {
            seterr(err, errlen, "tokenizer.ggml.scores: %llu %s values for %zu tokens",
                   (unsigned long long)scores.n, gguf_type_name(scores.type), t->n);
            return KITH_ECORRUPT;
        }
        have_scores = 1;
    }
    if (gguf_get_arr(f, "tokenizer.ggml.token_type", &types) == 0) {
        if (types.n < toks.n || types.type == GGUF_TYPE_STRING || types.type == GGUF_TYPE_FLOAT32 ||
            types.type == GGUF_TYPE_FLOAT64) {
            seterr(err, errlen, "tokenizer.ggml.token_type: %llu %s values for %zu tokens",
                   (unsigned long long)types.n, gguf_type_name(types.type), t->n);
            return KITH_ECORRUPT;
        }
        have_types = 1;
    }

    /* texts into one blob; an empty text becomes "[EMPTY_i]" as in llama.cpp */
    size_t total = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (gguf_arr_str(&toks, i, &s, &len) || len > UINT32_MAX / 2) {
            seterr(err, errlen, "tokenizer.ggml.tokens: bad entry %zu", i);
            return KITH_ECORRUPT;
        }
        total += (len ? len : 24) + 1;
        if (total > UINT32_MAX / 2) {
            seterr(err, errlen, "tokenizer.ggml.tokens: vocabulary text too large");
            return KITH_ETOOBIG;
        }
    }
    t->toks = kith_calloc(t->n, sizeof(*t->toks));
    t->blob = kith_malloc(total);
    t->map_cap = 16;
    while (t->map_cap < t->n * 2)
        t->map_cap <<= 1;
    t->map = kith_calloc(t->map_cap, sizeof(*t->map));
    if (!t->toks || !t->blob || !t->map)
        return KITH_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct tok_entry *e = &t->toks[i];
        gguf_arr_str(&toks, i, &s, &len);
        e->off = (uint32_t)pos;
        if (len) {
            memcpy(t->blob + pos, s, len);
        } else {
            len = (size_t)snprintf(t->blob + pos, 25, "[EMPTY_%zu]", i);
        }
        t->blob[pos + len] = 0;
        e->len = (uint32_t)len;
        pos += len + 1;
        e->score = 0;
        if (have_scores)
            gguf_arr_get_f32(&scores, i, &e->score);
        e->type = TOK_NORMAL;
        if (have_types) {
            int32_t ty = TOK_UNDEFINED;
            if (gguf_arr_get_i32(&types, i, &ty) || ty < 0 || ty > TOK_BYTE)
                ty = TOK_UNDEFINED;
            e->type = (uint8_t)ty;
        }
        map_insert(t, (uint32_t)i);
    }

    /* defaults per llama.cpp, then the metadata */
    t->eot = t->eom = -1;
    if (t->kind == TOKENIZER_SPM) {
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = 1;
        t->add_space_prefix = 1;
    } else {
        t->bos = t->eos = 11;
        t->unk = -1;
    }
    if ((size_t)t->bos >= t->n)
        t->bos = -1;
    if ((size_t)t->eos >= t->n)
        t->eos = -1;
    if (t->unk >= 0 && (size_t)t->unk >= t->n)
        t->unk = -1;
    if (t->kind == TOKENIZER_BPE) {
        rc = tok_bpe_init(t, f, err, errlen);
        if (rc)
            return rc;
    }
    get_id(f, "tokenizer.ggml.bos_token_id", t->n, &t->bos);
    get_id(f, "tokenizer.ggml.eos_token_id", t->n, &t->eos);
    get_id(f, "tokenizer.ggml.eot_token_id", t->n, &t->eot);
    get_id(f, "tokenizer.ggml.eom_token_id", t->n, &t->eom);
    get_id(f, "tokenizer.ggml.unknown_token_id", t->n, &t->unk);
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &v) == 0)
        t->add_bos = v;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &v) == 0)
        t->add_eos = v;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &v) == 0)
        t->add_space_prefix = v;

    /* byte fallback for SPM: "<0xXX>", else the one-character token */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof(buf), "<0x%02X>", b);
        t->byte_tok[b] = tokenizer_find(t, buf, 6);
        if (t->byte_tok[b] < 0) {
            buf[0] = (char)b;
            t->byte_tok[b] = tokenizer_find(t, buf, 1);
        }
    }

    /* end of generation: EOS, EOT, EOM, and end-of-turn texts */
    if (t->eot < 0) {
        for (size_t k = 0; k < sizeof(eot_texts) / sizeof(eot_texts[0]) && t->eot < 0; k++)
            t->eot = tokenizer_find(t, eot_texts[k], strlen(eot_texts[k]));
    }
    t->eog = kith_malloc((3 + sizeof(eot_texts) / sizeof(eot_texts[0])) * sizeof(int32_t));
    if (!t->eog)
        return KITH_ENOMEM;
    int32_t cand[3] = {t->eos, t->eot, t->eom};
    for (int k = 0; k < 3; k++)
        if (cand[k] >= 0)
            t->eog[t->n_eog++] = cand[k];
    for (size_t k = 0; k < sizeof(eot_texts) / sizeof(eot_texts[0]); k++) {
        int32_t id = tokenizer_find(t, eot_texts[k], strlen(eot_texts[k]));
        if (id >= 0 && t->toks[id].type == TOK_CONTROL)
            t->eog[t->n_eog++] = id;
    }

    /* special tokens, matched as whole pieces before tokenizing, longest first */
    size_t ns = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint8_t ty = t->toks[i].type;
        if (ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN)
            ns++;
    }
    t->special = kith_malloc((ns ? ns : 1) * sizeof(int32_t));
    if (!t->special)
        return KITH_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        uint8_t ty = t->toks[i].type;
        if (ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN)
            t->special[t->n_special++] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof(int32_t), by_len_desc, t);

    return build_pieces(t);
}

int tokenizer_load(const gguf_file *f, struct tokenizer **out, char *err, size_t errlen)
{
    struct tokenizer *t;
    int rc;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    t = kith_calloc(1, sizeof(*t));
    if (!t) {
        seterr(err, errlen, "out of memory");
        return KITH_ENOMEM;
    }
    rc = load(f, t, err, errlen);
    if (rc) {
        if (err && errlen && !err[0])
            seterr(err, errlen, "cannot load the tokenizer: %s", kith_strerror(rc));
        tokenizer_free(t);
        return rc;
    }
    *out = t;
    return KITH_OK;
}

int tokenizer_from_gguf(const gguf_file *f, struct tokenizer **out, char *err, size_t errlen)
{
    return tokenizer_load(f, out, err, errlen);
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_re; i++)
        pcre2_code_free(t->re[i]);
    kith_free(t->pre);
    kith_free(t->toks);
    kith_free(t->blob);
    kith_free(t->pieces);
    kith_free(t->map);
    kith_free(t->merges);
    kith_free(t->mblob);
    kith_free(t->mmap_);
    kith_free(t->special);
    kith_free(t->eog);
    kith_free(t);
}

/* ---- accessors ---- */

size_t tokenizer_n_vocab(const struct tokenizer *t)
{
    return t->n;
}

int tokenizer_bos(const struct tokenizer *t)
{
    return t->bos;
}

int tokenizer_eos(const struct tokenizer *t)
{
    return t->eos;
}

int tokenizer_eot(const struct tokenizer *t)
{
    return t->eot;
}

int tokenizer_add_bos(const struct tokenizer *t)
{
    return t->add_bos && t->bos >= 0;
}

int tokenizer_add_eos(const struct tokenizer *t)
{
    return t->add_eos && t->eos >= 0;
}

int tokenizer_is_eog(const struct tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}

const char *tokenizer_model_name(const struct tokenizer *t)
{
    return t->kind == TOKENIZER_SPM ? "llama" : "gpt2";
}

const char *tokenizer_pre_name(const struct tokenizer *t)
{
    return t->pre;
}

const char *tokenizer_text(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n)
        return NULL;
    if (len)
        *len = t->toks[id].len;
    return t->blob + t->toks[id].off;
}

int tokenizer_type(const struct tokenizer *t, int32_t id)
{
    return id < 0 || (size_t)id >= t->n ? TOK_UNDEFINED : t->toks[id].type;
}

int tokenizer_piece(const struct tokenizer *t, int32_t id, int special, const char **s,
                    size_t *len)
{
    if (id < 0 || (size_t)id >= t->n)
        return KITH_ERANGE;
    const struct tok_entry *e = &t->toks[id];
    *s = t->pieces + e->poff;
    *len = (!special && e->type == TOK_CONTROL) ? 0 : e->plen;
    return KITH_OK;
}

/* ---- SentencePiece-style (llama.cpp's llm_tokenizer_spm) ---- */

struct spm_sym {
    int prev, next;
    size_t off, n;
};

struct spm_bigram {
    float score;
    int left, right;
    size_t size;
};

/* The queue pops the highest score, and on a tie the leftmost pair. */
static int spm_less(const struct spm_bigram *a, const struct spm_bigram *b)
{
    return a->score < b->score || (a->score == b->score && a->left > b->left);
}

struct spm_heap {
    struct spm_bigram *v;
    size_t n, cap;
};

static int heap_push(struct spm_heap *h, struct spm_bigram b)
{
    if (h->n == h->cap && kith_grow((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v)))
        return KITH_ENOMEM;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!spm_less(&h->v[p], &b))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return KITH_OK;
}

static struct spm_bigram heap_pop(struct spm_heap *h)
{
    struct spm_bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && spm_less(&h->v[c], &h->v[c + 1]))
            c++;
        if (!spm_less(&last, &h->v[c]))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

static int spm_try_bigram(const struct tokenizer *t, const char *text, struct spm_sym *sy,
                          struct spm_heap *h, int left, int right)
{
    if (left < 0 || right < 0)
        return KITH_OK;
    size_t size = sy[left].n + sy[right].n;
    int32_t id = tokenizer_find(t, text + sy[left].off, size);
    if (id < 0)
        return KITH_OK;
    struct spm_bigram b = {t->toks[id].score, left, right, size};
    return heap_push(h, b);
}

/* UTF-8 sequence length from the lead byte alone, as llama.cpp splits (no validation). */
static size_t utf8_len(unsigned char c)
{
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

static int spm_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids,
                      size_t *n, size_t *cap)
{
    struct spm_sym *sy = NULL;
    struct spm_heap h = {0};
    size_t nsym = 0;
    int rc = KITH_OK;

    if (!len)
        return KITH_OK;
    sy = kith_malloc(len * sizeof(*sy));
    if (!sy)
        return KITH_ENOMEM;
    for (size_t off = 0; off < len;) {
        size_t cl = utf8_len((unsigned char)text[off]);
        if (cl > len - off)
            cl = len - off;
        sy[nsym].off = off;
        sy[nsym].n = cl;
        sy[nsym].prev = (int)nsym - 1;
        off += cl;
        sy[nsym].next = off == len ? -1 : (int)nsym + 1;
        nsym++;
    }
    for (size_t i = 1; i < nsym && !rc; i++)
        rc = spm_try_bigram(t, text, sy, &h, (int)i - 1, (int)i);
    while (h.n && !rc) {
        struct spm_bigram b = heap_pop(&h);
        struct spm_sym *l = &sy[b.left], *r = &sy[b.right];
        /* skip pairs made stale by an earlier merge */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = b.left;
        rc = spm_try_bigram(t, text, sy, &h, l->prev, b.left);
        if (!rc)
            rc = spm_try_bigram(t, text, sy, &h, b.left, l->next);
    }
    /* Every merged symbol is a token (only token texts are merged), so
     * llama.cpp's resegment reduces to: a token, or its bytes. */
    for (int i = 0; i != -1 && !rc; i = sy[i].next) {
        int32_t id = tokenizer_find(t, text + sy[i].off, sy[i].n);
        if (id >= 0) {
            rc = tok_push(ids, n, cap, id);
            continue;
        }
        for (size_t j = 0; j < sy[i].n && !rc; j++) {
            int32_t bt = t->byte_tok[(unsigned char)text[sy[i].off + j]];
            if (bt < 0)
                bt = t->unk; /* llama.cpp throws here; kith falls back to <unk> */
            if (bt >= 0)
                rc = tok_push(ids, n, cap, bt);
        }
    }
    kith_free(h.v);
    kith_free(sy);
    return rc;
}

/* Escapes spaces as U+2581 and adds the dummy prefix, then encodes. */
static int spm_fragment(const struct tokenizer *t, const char *s, size_t len, int prefix,
                        int32_t **ids, size_t *n, size_t *cap)
{
    size_t spaces = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        spaces += s[i] == ' ';
    if (len > (SIZE_MAX - 3) / 3)
        return KITH_ETOOBIG;
    char *buf = kith_malloc(len + 2 * spaces + 3);
    if (!buf)
        return KITH_ENOMEM;
    size_t k = 0;
    if (prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(buf + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            buf[k++] = s[i];
        }
    }
    int rc = spm_encode(t, buf, k, ids, n, cap);
    kith_free(buf);
    return rc;
}

/* ---- special-token partition (llama.cpp's tokenizer_st_partition) ---- */

struct frag {
    int32_t tok; /* -1: raw text */
    size_t off, len;
};

struct fragv {
    struct frag *v;
    size_t n, cap;
};

static int frag_push(struct fragv *f, int32_t tok, size_t off, size_t len)
{
    if (f->n == f->cap && kith_grow((void **)&f->v, &f->cap, f->n + 1, sizeof(*f->v)))
        return KITH_ENOMEM;
    f->v[f->n].tok = tok;
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
    return KITH_OK;
}

/* Splits every raw fragment of @in on each special token, longest token
 * first, left to right, into @out; the two vectors swap roles per token. */
static int partition(const struct tokenizer *t, const char *text, size_t len, int parse_special,
                     struct fragv *a, struct fragv *b)
{
    int rc = frag_push(a, -1, 0, len);
    for (size_t si = 0; si < t->n_special && !rc; si++) {
        int32_t id = t->special[si];
        const struct tok_entry *e = &t->toks[id];
        const char *tt = t->blob + e->off;
        /* Control and unknown tokens only when asked; user-defined always
         * (the Hugging Face tokenizers do the same). */
        if (!parse_special && (e->type == TOK_CONTROL || e->type == TOK_UNKNOWN))
            continue;
        if (e->len == 0 || e->len > len)
            continue;
        int any = 0;
        for (size_t fi = 0; fi < a->n; fi++)
            if (a->v[fi].tok < 0 && a->v[fi].len >= e->len &&
                memmem(text + a->v[fi].off, a->v[fi].len, tt, e->len)) {
                any = 1;
                break;
            }
        if (!any)
            continue;
        b->n = 0;
        for (size_t fi = 0; fi < a->n && !rc; fi++) {
            struct frag fr = a->v[fi];
            if (fr.tok >= 0) {
                rc = frag_push(b, fr.tok, 0, 0);
                continue;
            }
            size_t off = fr.off, end = fr.off + fr.len;
            while (off < end && !rc) {
                const char *m = memmem(text + off, end - off, tt, e->len);
                if (!m) {
                    rc = frag_push(b, -1, off, end - off);
                    break;
                }
                size_t mo = (size_t)(m - text);
                if (mo > off)
                    rc = frag_push(b, -1, off, mo - off);
                if (!rc)
                    rc = frag_push(b, id, 0, 0);
                off = mo + e->len;
            }
        }
        struct fragv tmp = *a;
        *a = *b;
        *b = tmp;
    }
    return rc;
}

int tokenizer_tokenize(const struct tokenizer *t, const char *text, size_t len, unsigned flags,
                       int32_t **ids, size_t *n)
{
    struct fragv a = {0}, b = {0};
    size_t cap = 0;
    int rc = KITH_OK;
    int add_special = (flags & KITH_TOKENIZE_ADD_SPECIAL) != 0;

    *ids = NULL;
    *n = 0;
    if (add_special && t->add_bos && t->bos >= 0)
        rc = tok_push(ids, n, &cap, t->bos);
    if (!rc && len)
        rc = partition(t, text, len, (flags & KITH_TOKENIZE_PARSE_SPECIAL) != 0, &a, &b);
    /* SentencePiece adds its dummy space before the first text and after each special token. */
    int prev_special = 1;
    for (size_t i = 0; i < a.n && !rc; i++) {
        const struct frag *fr = &a.v[i];
        if (fr->tok >= 0) {
            rc = tok_push(ids, n, &cap, fr->tok);
            prev_special = 1;
            continue;
        }
        if (t->kind == TOKENIZER_SPM)
            rc = spm_fragment(t, text + fr->off, fr->len, t->add_space_prefix && prev_special, ids,
                              n, &cap);
        else
            rc = tok_bpe_encode(t, text + fr->off, fr->len, ids, n, &cap);
        prev_special = 0;
    }
    if (!rc && add_special && t->add_eos && t->eos >= 0)
        rc = tok_push(ids, n, &cap, t->eos);
    if (!rc && !*ids) {
        *ids = kith_malloc(sizeof(int32_t));
        if (!*ids)
            rc = KITH_ENOMEM;
    }
    kith_free(a.v);
    kith_free(b.v);
    if (rc) {
        kith_free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int tokenizer_detokenize(const struct tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                         char **out, size_t *len)
{
    size_t total = 1, k = 0;
    int special = (flags & KITH_DETOKENIZE_SPECIAL) != 0;
    *out = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n)
            return KITH_ERANGE;
        total += t->toks[ids[i]].plen;
    }
    char *buf = kith_malloc(total);
    if (!buf)
        return KITH_ENOMEM;
    /* llama.cpp drops the dummy-prefix space of the first piece. */
    int strip = t->kind == TOKENIZER_SPM && t->add_space_prefix &&
                !(flags & KITH_DETOKENIZE_KEEP_SPACE);
    for (size_t i = 0; i < n; i++) {
        const char *p = "";
        size_t pl = 0;
        tokenizer_piece(t, ids[i], special, &p, &pl);
        if (strip && pl && p[0] == ' ') {
            p++;
            pl--;
        }
        strip = 0;
        memcpy(buf + k, p, pl);
        k += pl;
    }
    buf[k] = 0;
    *out = buf;
    *len = k;
    return KITH_OK;
}

/* ---- public API ---- */

struct kith_vocab {
    struct tokenizer *t;
};

KITH_API int kith_vocab_load(const char *path, kith_vocab **out, char *err, size_t errlen)
{
    gguf_file *f = NULL;
    kith_vocab *v = NULL;
    int rc;
    *out = NULL;
    rc = gguf_open(path, &f, err, errlen);
    if (rc)
        return rc;
    v = kith_calloc(1, sizeof(*v));
    if (!v) {
        seterr(err, errlen, "out of memory");
        rc = KITH_ENOMEM;
        goto out;
    }
    rc = tokenizer_load(f, &v->t, err, errlen);
    if (rc) {
        kith_free(v);
        goto out;
    }
    *out = v;
out:
    gguf_close(f);
    return rc;
}

KITH_API void kith_vocab_free(kith_vocab *v)
{
    if (!v)
        return;
    tokenizer_free(v->t);
    kith_free(v);
}

KITH_API int32_t kith_vocab_n_tokens(const kith_vocab *v)
{
    return (int32_t)v->t->n;
}

KITH_API int32_t kith_vocab_bos(const kith_vocab *v)
{
    return v->t->bos;
}

KITH_API int32_t kith_vocab_eos(const kith_vocab *v)
{
    return v->t->eos;
}

KITH_API int kith_vocab_is_eog(const kith_vocab *v, int32_t id)
{
    return tokenizer_is_eog(v->t, id);
}

KITH_API int kith_tokenize(const kith_vocab *v, const char *text, size_t len, int add_special,
                           int32_t **ids, size_t *n)
{
    return tokenizer_tokenize(v->t, text, len, add_special ? KITH_TOKENIZE_ADD_SPECIAL : 0, ids,
                              n);
}

KITH_API int kith_tokenize_ex(const kith_vocab *v, const char *text, size_t len, unsigned flags,
                              int32_t **ids, size_t *n)
{
    return tokenizer_tokenize(v->t, text, len, flags, ids, n);
}

KITH_API int kith_token_piece(const kith_vocab *v, int32_t id, int special, const char **piece,
                              size_t *len)
{
    return tokenizer_piece(v->t, id, special, piece, len);
}

KITH_API int kith_detokenize(const kith_vocab *v, const int32_t *ids, size_t n, unsigned flags,
                             char **out, size_t *len)
{
    return tokenizer_detokenize(v->t, ids, n, flags, out, len);
}

/*
 * tokenizer_bpe.c: byte-level BPE ("gpt2" GGUF tokenizers). Text is split by
 * the pre-tokenizer's chain of regexes (PCRE2, chosen by tokenizer.ggml.pre
 * as llama.cpp chooses them), each word is mapped byte by byte into GPT-2's
 * printable "byte-unicode" alphabet, and adjacent symbols are merged by rank
 * from tokenizer.ggml.merges, lowest rank first, leftmost on ties.
 *
 * Two details keep the ids equal to llama.cpp's: (1) "\s" means llama.cpp's
 * whitespace set (which includes U+0085, unlike PCRE2 10.42's), so patterns
 * are rewritten with an explicit class; (2) invalid UTF-8 becomes U+FFFD
 * before splitting, as llama.cpp's decoder does.
 */
#define TOKENIZER_PRIVATE
#include "ai/tokenizer.h"

#include <stdio.h>
#include <string.h>

#include "util/util_int.h"

/* ---- pre-tokenizers ---- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3_(num)                                                                        \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" \
    num "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"

/* deepseek-llm's letter class, as its tokenizer.json spells it. */
#define RE_DS_LETTERS                                                                           \
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf"     \
    "\xc7\x84-\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd"        \
    "\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81" \
    "\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5"        \
    "\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf"                 \
    "\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a"                 \
    "\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85"                 \
    "\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d"      \
    "\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe"     \
    "\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93"                 \
    "\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4"                 \
    "\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95"      \
    "\xe2\x84\x99-\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad"      \
    "\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89"     \
    "\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4"      \
    "\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad"                  \
    "\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87"                 \
    "\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86"                 \
    "\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a"                 \
    "\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93"                          \
    "\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2"                          \
    "\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f"                          \
    "\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"

struct pre_def {
    const char *names; /* space-separated tokenizer.ggml.pre values */
    const char *re[TOKENIZER_MAX_RE];
    int ignore_merges, add_bos, no_bos;
};

static const struct pre_def pre_defs[] = {
    {"default",
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0, 0, 0},
    {"llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2",
     {RE_LLAMA3_("\\p{N}{1,3}")}, 1, 1, 0},
    {"dbrx smaug-bpe", {RE_LLAMA3_("\\p{N}{1,3}")}, 0, 0, 0},
    {"deepseek-llm",
     {"[\r\n]", RE_DS_LETTERS,
      "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f"
      "\xe3\x80\x80-\xe3\x80\x82]+",
      "\\s+$", RE_CJK, "\\p{N}+"},
     0, 0, 0},
    {"deepseek-coder", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}, 0, 0, 0},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     0, 0, 0},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, 0, 0, 0},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b", {"\\p{N}", RE_GPT2}, 0, 0, 0},
    {"gpt-2 phi-2 jina-es jina-de gigachat jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
     "roberta-bpe mpt olmo jais trillion",
     {RE_GPT2}, 0, 0, 0},
    {"qwen2 qwen2.5 qwen-2.5 deepseek-r1-qwen megrez stablelm2 hunyuan",
     {RE_LLAMA3_("\\p{N}")}, 0, 0, 0},
    {"poro-chat bloom gpt3-finnish",
     {" ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"},
     0, 0, 0},
    {"chatglm-bpe glm4", {RE_LLAMA3_("\\p{N}{1,3}")}, 0, 0, 1},
    {"viking",
     {" ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+",
      "\\p{N}"},
     0, 0, 0},
    /* llama.cpp's std::regex form of tekken's pattern (it has no \p{Lu}); kept
     * as is so that non-ASCII letters group the same way. */
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
      "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
      "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     1, 1, 0},
    {"chameleon",
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
     0, 1, 0},
    {"gpt-4o llama4",
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
      "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}|"
      " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     0, 0, 0},
};

/* llama.cpp's whitespace (unicode_cpt_flags is_whitespace), for use inside a class. */
#define WS_SET                                                                                 \
    "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"      \
    "\\x{205f}\\x{3000}"

/* Rewrites \s and \S into explicit classes of WS_SET. */
static char *rewrite_ws(const char *pat)
{
    size_t n = strlen(pat), k = 0, cap = n * 4 + 1;
    int in_class = 0;
    /* each "\s" grows by at most strlen(WS_SET) + 3 */
    for (size_t i = 0; i + 1 < n; i++)
        if (pat[i] == '\\' && (pat[i + 1] == 's' || pat[i + 1] == 'S'))
            cap += sizeof(WS_SET) + 4;
    char *out = kith_malloc(cap);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            if (d == 's' || (d == 'S' && !in_class)) {
                const char *pre = in_class ? "" : (d == 's' ? "[" : "[^");
                k += (size_t)sprintf(out + k, "%s%s%s", pre, WS_SET, in_class ? "" : "]");
            } else {
                out[k++] = c;
                out[k++] = d;
            }
            i++;
            continue;
        }
        if (c == '[' && !in_class)
            in_class = 1;
        else if (c == ']' && in_class)
            in_class = 0;
        out[k++] = c;
    }
    out[k] = 0;
    return out;
}

static int name_in(const char *names, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == nl && memcmp(p, name, l) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* ---- merges ---- */

static uint64_t pair_hash(const char *l, size_t ll, const char *r, size_t rl)
{
    uint64_t h = tok_hash(l, ll, TOK_HASH_SEED);
    h = tok_hash("\xff", 1, h); /* 0xff never occurs in UTF-8, so pairs cannot alias */
    return tok_hash(r, rl, h);
}

/* Rank of merging @l and @r, or -1. */
static int32_t merge_rank(const struct tokenizer *t, const char *l, size_t ll, const char *r,
                          size_t rl)
{
    size_t mask = t->mmap_cap - 1;
    for (size_t i = pair_hash(l, ll, r, rl) & mask;; i = (i + 1) & mask) {
        uint32_t v = t->mmap_[i];
        if (!v)
            return -1;
        const struct tok_merge *m = &t->merges[v - 1];
        if (m->llen == ll && m->rlen == rl && memcmp(t->mblob + m->loff, l, ll) == 0 &&
            memcmp(t->mblob + m->roff, r, rl) == 0)
            return (int32_t)(v - 1);
    }
}

static int load_merges(struct tokenizer *t, const gguf_file *f, char *err, size_t errlen)
{
    struct gguf_arr a;
    const char *s;
    size_t len, total = 0;
    int rc = gguf_get_arr(f, "tokenizer.ggml.merges", &a);
    if (rc || a.type != GGUF_TYPE_STRING) {
        snprintf(err, errlen, "tokenizer.ggml.merges is %s",
                 rc == KITH_ENOTFOUND ? "missing" : "not an array of strings");
        return KITH_ECORRUPT;
    }
    if (a.n > INT32_MAX / 2) {
        snprintf(err, errlen, "tokenizer.ggml.merges has too many entries");
        return KITH_ECORRUPT;
    }
    for (uint64_t i = 0; i < a.n; i++) {
        gguf_arr_str(&a, i, &s, &len);
        total += len;
        if (total > UINT32_MAX / 2) {
            snprintf(err, errlen, "tokenizer.ggml.merges: too large");
            return KITH_ETOOBIG;
        }
    }
    t->n_merges = (size_t)a.n;
    t->merges = kith_malloc((t->n_merges ? t->n_merges : 1) * sizeof(*t->merges));
    t->mblob = kith_malloc(total ? total : 1);
    t->mmap_cap = 16;
    while (t->mmap_cap < t->n_merges * 2)
        t->mmap_cap <<= 1;
    t->mmap_ = kith_calloc(t->mmap_cap, sizeof(*t->mmap_));
    if (!t->merges || !t->mblob || !t->mmap_)
        return KITH_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < t->n_merges; i++) {
        gguf_arr_str(&a, i, &s, &len);
        memcpy(t->mblob + pos, s, len);
        /* "left right", split at the first space after the first byte */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        size_t ll = sp ? (size_t)(sp - s) : 0;
        t->merges[i].loff = (uint32_t)pos;
        t->merges[i].llen = (uint32_t)ll;
        t->merges[i].roff = (uint32_t)(pos + ll + 1);
        t->merges[i].rlen = sp ? (uint32_t)(len - ll - 1) : 0;
        pos += len;
        if (!sp)
            continue; /* llama.cpp stores ("", ""), which never matches */
        /* the first of duplicate merges keeps its rank */
        if (merge_rank(t, s, ll, s + ll + 1, len - ll - 1) >= 0)
            continue;
        size_t mask = t->mmap_cap - 1;
        size_t j = pair_hash(s, ll, s + ll + 1, len - ll - 1) & mask;
        while (t->mmap_[j])
            j = (j + 1) & mask;
        t->mmap_[j] = (uint32_t)i + 1;
    }
    return KITH_OK;
}

int tok_bpe_init(struct tokenizer *t, const gguf_file *f, char *err, size_t errlen)
{
    const struct pre_def *d = NULL;
    int rc = load_merges(t, f, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(pre_defs) / sizeof(pre_defs[0]) && !d; i++)
        if (name_in(pre_defs[i].names, t->pre))
            d = &pre_defs[i];
    if (!d) {
        /* llama.cpp refuses unknown pre-tokenizers rather than guess: so does kith. */
        snprintf(err, errlen, "pre-tokenizer '%.40s' (tokenizer.ggml.pre) is not supported", t->pre);
        return KITH_EUNSUPPORTED;
    }
    t->ignore_merges = d->ignore_merges;
    if (d->add_bos)
        t->add_bos = 1;
    if (d->no_bos)
        t->bos = -1;
    for (int i = 0; i < TOKENIZER_MAX_RE && d->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        char *pat = rewrite_ws(d->re[i]);
        if (!pat)
            return KITH_ENOMEM;
        /* $ must mean the end of the word only, as in ECMAScript (deepseek's "\s+$"). */
        t->re[i] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        kith_free(pat);
        if (!t->re[i]) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            snprintf(err, errlen, "pre-tokenizer '%.40s': regex %d: %s at %zu", t->pre, i,
                     (const char *)msg, (size_t)eo);
            return KITH_EUNSUPPORTED;
        }
        t->n_re = i + 1;
        pcre2_jit_compile(t->re[i], PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    }
    return KITH_OK;
}

/* ---- GPT-2 byte <-> unicode ---- */

/* Code point standing for byte @b: printable Latin-1 bytes stand for
 * themselves, the rest are moved to U+0100.. in byte order. */
static uint32_t byte_cp(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae))
        return b;
    uint32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae)))
            k++;
    return 256 + k;
}

static const struct byte_tab {
    int ready;
    char enc[256][2];
    uint8_t enc_len[256];
    int16_t dec[324]; /* code point -> byte, -1 if none */
} *byte_tab_get(void);

static struct byte_tab g_bytes;

/* Built once; the race of two first calls writes the same values. */
static const struct byte_tab *byte_tab_get(void)
{
    if (__atomic_load_n(&g_bytes.ready, __ATOMIC_ACQUIRE))
        return &g_bytes;
    struct byte_tab b;
    for (int i = 0; i < 324; i++)
        b.dec[i] = -1;
    for (unsigned x = 0; x < 256; x++) {
        uint32_t cp = byte_cp(x);
        if (cp < 0x80) {
            b.enc[x][0] = (char)cp;
            b.enc_len[x] = 1;
        } else {
            b.enc[x][0] = (char)(0xc0 | (cp >> 6));
            b.enc[x][1] = (char)(0x80 | (cp & 0x3f));
            b.enc_len[x] = 2;
        }
        b.dec[cp] = (int16_t)x;
    }
    b.ready = 0;
    memcpy(g_bytes.enc, b.enc, sizeof(b.enc));
    memcpy(g_bytes.enc_len, b.enc_len, sizeof(b.enc_len));
    memcpy(g_bytes.dec, b.dec, sizeof(b.dec));
    __atomic_store_n(&g_bytes.ready, 1, __ATOMIC_RELEASE);
    return &g_bytes;
}

/* Decodes one UTF-8 sequence the way llama.cpp's unicode_cpt_from_utf8 does
 * (lead byte and continuation bits only); returns its length or 0 if invalid. */
static size_t utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (!(c & 0x80)) {
        *cp = c;
        return 1;
    }
    if (!(c & 0x40))
        return 0;
    if (!(c & 0x20)) {
        if (n < 2 || (s[1] & 0xc0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if (!(c & 0x10)) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    if (!(c & 0x08)) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
              ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
        return 4;
    }
    return 0;
}

static size_t utf8_enc(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t tok_bpe_decode(const char *s, size_t len, char *out)
{
    const struct byte_tab *bt = byte_tab_get();
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_dec((const unsigned char *)s + i, len - i, &cp);
        if (l && cp < 324 && bt->dec[cp] >= 0) {
            out[k++] = (char)bt->dec[cp];
            i += l;
        } else {
            /* not a byte-unicode character: pass it through (output never
             * exceeds the input, since each mapped character is >= 1 byte) */
            if (!l)
                l = 1;
            memcpy(out + k, s + i, l);
            k += l;
            i += l;
        }
    }
    return k;
}

/* ---- encoding ---- */

struct span {
    size_t off, len;
};

struct spanv {
    struct span *v;
    size_t n, cap;
};

static int span_push(struct spanv *s, size_t off, size_t len)
{
    if (s->n == s->cap && kith_grow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)))
        return KITH_ENOMEM;
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return KITH_OK;
}

/* Splits each span of @in by the matches of @re (the text between matches
 * stays as its own span), as llama.cpp's unicode_regex_split does. Each span
 * is its own subject, so lookaheads do not see past it. */
static int split(const pcre2_code *re, pcre2_match_data *md, const char *text,
                 const struct spanv *in, struct spanv *out)
{
    int rc = KITH_OK;
    out->n = 0;
    for (size_t si = 0; si < in->n && !rc; si++) {
        const char *subj = text + in->v[si].off;
        size_t len = in->v[si].len, pos = 0, last = 0;
        uint32_t opts = PCRE2_NO_UTF_CHECK;
        while (pos < len) {
            int m = pcre2_match(re, (PCRE2_SPTR)subj, len, pos, opts, md, NULL);
            if (m == PCRE2_ERROR_NOMATCH)
                break;
            if (m < 0) {
                if (!(opts & PCRE2_NO_JIT)) {
                    opts |= PCRE2_NO_JIT; /* e.g. JIT stack exhausted: retry interpreted */
                    continue;
                }
                break; /* leave the rest unsplit rather than fail */
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], e = ov[1];
            if (e <= s) {
                /* empty match: step over one character */
                pos = s + 1;
                while (pos < len && ((unsigned char)subj[pos] & 0xc0) == 0x80)
                    pos++;
                continue;
            }
            if (s > last)
                rc = span_push(out, in->v[si].off + last, s - last);
            if (!rc)
                rc = span_push(out, in->v[si].off + s, e - s);
            if (rc)
                break;
            last = pos = e;
        }
        if (!rc && last < len)
            rc = span_push(out, in->v[si].off + last, len - last);
    }
    return rc;
}

struct bsym {
    int prev, next;
    size_t off, n;
};

struct bbigram {
    uint64_t key; /* rank << 32 | left: the smallest pops first */
    int right;
    size_t size;
};

struct bheap {
    struct bbigram *v;
    size_t n, cap;
};

static int bheap_push(struct bheap *h, struct bbigram b)
{
    if (h->n == h->cap && kith_grow((void **)&h->v, &h->cap, h->n + 1, sizeof(*h->v)))
        return KITH_ENOMEM;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].key <= b.key)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return KITH_OK;
}

static struct bbigram bheap_pop(struct bheap *h)
{
    struct bbigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key)
            c++;
        if (last.key <= h->v[c].key)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

struct bscratch {
    struct bsym *sy;
    size_t sy_cap;
    struct bheap h;
};

static int add_bigram(const struct tokenizer *t, const char *w, struct bscratch *sc, int l, int r)
{
    if (l < 0 || r < 0)
        return KITH_OK;
    const struct bsym *a = &sc->sy[l], *b = &sc->sy[r];
    int32_t rank = merge_rank(t, w + a->off, a->n, w + b->off, b->n);
    if (rank < 0)
        return KITH_OK;
    struct bbigram bg = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)l, r, a->n + b->n};
    return bheap_push(&sc->h, bg);
}

/* BPE over one byte-encoded word. */
static int encode_word(const struct tokenizer *t, const char *w, size_t len, struct bscratch *sc,
                       int32_t **ids, size_t *n, size_t *cap)
{
    size_t nsym = 0;
    int rc = KITH_OK;
    if (t->ignore_merges) {
        int32_t id = tokenizer_find(t, w, len);
        if (id >= 0)
            return tok_push(ids, n, cap, id);
    }
    if (kith_grow((void **)&sc->sy, &sc->sy_cap, len, sizeof(*sc->sy)))
        return KITH_ENOMEM;
    struct bsym *sy = sc->sy;
    for (size_t off = 0; off < len;) {
        size_t cl = 1;
        unsigned char c = (unsigned char)w[off];
        if (c >= 0xf0)
            cl = 4;
        else if (c >= 0xe0)
            cl = 3;
        else if (c >= 0xc0)
            cl = 2;
        if (cl > len - off)
            cl = len - off;
        sy[nsym].off = off;
        sy[nsym].n = cl;
        sy[nsym].prev = (int)nsym - 1;
        off += cl;
        sy[nsym].next = off == len ? -1 : (int)nsym + 1;
        nsym++;
    }
    sc->h.n = 0;
    for (size_t i = 1; i < nsym && !rc; i++)
        rc = add_bigram(t, w, sc, (int)i - 1, (int)i);
    while (sc->h.n && !rc) {
        struct bbigram b = bheap_pop(&sc->h);
        int left = (int)(uint32_t)b.key;
        struct bsym *l = &sy[left], *r = &sy[b.right];
        /* stale: one side was merged since (its length changed) */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = left;
        rc = add_bigram(t, w, sc, l->prev, left);
        if (!rc)
            rc = add_bigram(t, w, sc, left, l->next);
    }
    for (int i = 0; i != -1 && !rc && nsym; i = sy[i].next) {
        int32_t id = tokenizer_find(t, w + sy[i].off, sy[i].n);
        if (id >= 0) {
            rc = tok_push(ids, n, cap, id);
            continue;
        }
        /* llama.cpp's fallback: single-byte tokens of the encoded bytes, if any */
        for (size_t j = 0; j < sy[i].n && !rc; j++) {
            id = tokenizer_find(t, w + sy[i].off + j, 1);
            if (id >= 0)
                rc = tok_push(ids, n, cap, id);
        }
    }
    return rc;
}

int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, int32_t **ids,
                   size_t *n, size_t *cap)
{
    const struct byte_tab *bt = byte_tab_get();
    struct spanv a = {0}, b = {0};
    struct bscratch sc = {0};
    pcre2_match_data *md = NULL;
    char *clean = NULL, *word = NULL;
    size_t clen = 0, wcap = 0;
    int rc = KITH_OK;

    if (len > SIZE_MAX / 4)
        return KITH_ETOOBIG;
    /* Invalid UTF-8 becomes U+FFFD byte by byte as in llama.cpp; overlong
     * forms come out canonical. Surrogates and code points past U+10FFFF,
     * which llama.cpp passes on, become U+FFFD too (PCRE2 rejects them). */
    clean = kith_malloc(len * 3 + 1);
    if (!clean)
        return KITH_ENOMEM;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_dec((const unsigned char *)text + i, len - i, &cp);
        if (!l) {
            cp = 0xfffd;
            l = 1;
        } else if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            cp = 0xfffd;
        }
        clen += utf8_enc(cp, clean + clen);
        i += l;
    }
    md = pcre2_match_data_create(16, NULL);
    if (!md) {
        rc = KITH_ENOMEM;
        goto out;
    }
    rc = span_push(&a, 0, clen);
    for (int r = 0; r < t->n_re && !rc; r++) {
        rc = split(t->re[r], md, clean, &a, &b);
        struct spanv tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t si = 0; si < a.n && !rc; si++) {
        const unsigned char *s = (const unsigned char *)clean + a.v[si].off;
        size_t sl = a.v[si].len, k = 0;
        if (kith_grow((void **)&word, &wcap, sl * 2 + 1, 1)) {
            rc = KITH_ENOMEM;
            break;
        }
        for (size_t j = 0; j < sl; j++) {
            memcpy(word + k, bt->enc[s[j]], bt->enc_len[s[j]]);
            k += bt->enc_len[s[j]];
        }
        rc = encode_word(t, word, k, &sc, ids, n, cap);
    }
out:
    pcre2_match_data_free(md);
    kith_free(clean);
    kith_free(word);
    kith_free(a.v);
    kith_free(b.v);
    kith_free(sc.sy);
    kith_free(sc.h.v);
    return rc;
}

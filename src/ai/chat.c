/*
 * chat.c: chat templates. GGUF files carry their template as a Jinja string
 * (tokenizer.chat_template); rather than interpret Jinja, we recognise the
 * common families by their marker tokens, as llama.cpp's llama-chat.cpp does,
 * and render them in C. A model with no template, or one we do not know,
 * gets ChatML (the most widely trained format) - the documented fallback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ai/engine.h"
#include "util/util_int.h"

static int has(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(s + i, needle, n))
            return 1;
    return 0;
}

enum ai_tmpl ai_chat_detect(const char *t, size_t len)
{
    if (has(t, len, "<|start_header_id|>"))
        return AI_TMPL_LLAMA3;
    if (has(t, len, "<|im_start|>"))
        return AI_TMPL_CHATML;
    if (has(t, len, "<start_of_turn>"))
        return AI_TMPL_GEMMA;
    if (has(t, len, "<|assistant|>") && has(t, len, "<|end|>"))
        return AI_TMPL_PHI3;
    if (has(t, len, "<|assistant|>") || has(t, len, "<|user|>"))
        return AI_TMPL_ZEPHYR;
    if (has(t, len, "[INST]"))
        return has(t, len, "<<SYS>>") ? AI_TMPL_LLAMA2 : AI_TMPL_MISTRAL;
    return AI_TMPL_NONE;
}

const char *ai_chat_name(enum ai_tmpl t)
{
    switch (t) {
    case AI_TMPL_CHATML: return "chatml";
    case AI_TMPL_LLAMA3: return "llama3";
    case AI_TMPL_LLAMA2: return "llama2";
    case AI_TMPL_MISTRAL: return "mistral";
    case AI_TMPL_GEMMA: return "gemma";
    case AI_TMPL_PHI3: return "phi3";
    case AI_TMPL_ZEPHYR: return "zephyr";
    default: return "none";
    }
}

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || kith_grow((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 1)) {
        b->err = KITH_ENOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int kith_chat_format(const kith_model *m, const struct kith_chat_msg *msgs, size_t n,
                     int add_assistant, char **out)
{
    *out = NULL;
    if (!m || (!msgs && n))
        return KITH_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return KITH_EINVAL;
    struct sbuf b = {0};
    enum ai_tmpl t = m->tmpl == AI_TMPL_NONE ? AI_TMPL_CHATML : m->tmpl;
    const char *sys = NULL;
    switch (t) {
    case AI_TMPL_LLAMA3:
        for (size_t i = 0; i < n; i++)
            sb_add(&b, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", msgs[i].role,
                   msgs[i].content);
        if (add_assistant)
            sb_add(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case AI_TMPL_GEMMA: /* no system role: it prefixes the first user turn */
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(msgs[i].role, "system")) {
                sys = msgs[i].content;
                continue;
            }
            int user = strcmp(msgs[i].role, "assistant") != 0;
            sb_add(&b, "<start_of_turn>%s\n%s%s%s<end_of_turn>\n", user ? "user" : "model",
                   user && sys ? sys : "", user && sys ? "\n\n" : "", msgs[i].content);
            if (user)
                sys = NULL;
        }
        if (add_assistant)
            sb_add(&b, "<start_of_turn>model\n");
        break;
    case AI_TMPL_PHI3:
        for (size_t i = 0; i < n; i++)
            sb_add(&b, "<|%s|>\n%s<|end|>\n", msgs[i].role, msgs[i].content);
        if (add_assistant)
            sb_add(&b, "<|assistant|>\n");
        break;
    case AI_TMPL_ZEPHYR:
        for (size_t i = 0; i < n; i++)
            sb_add(&b, "<|%s|>\n%s</s>\n", msgs[i].role, msgs[i].content);
        if (add_assistant)
            sb_add(&b, "<|assistant|>\n");
        break;
    case AI_TMPL_LLAMA2:
    case AI_TMPL_MISTRAL:
        /* [INST] user [/INST] answer</s>; the system text opens the first
         * user turn (in a <<SYS>> block for Llama 2). BOS comes from the
         * tokenizer, so only later turns spell out <s>. */
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(msgs[i].role, "system")) {
                sys = msgs[i].content;
            } else if (!strcmp(msgs[i].role, "assistant")) {
                sb_add(&b, " %s</s>", msgs[i].content);
            } else {
                if (b.len)
                    sb_add(&b, "<s>");
                if (sys && t == AI_TMPL_LLAMA2)
                    sb_add(&b, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", sys, msgs[i].content);
                else if (sys)
                    sb_add(&b, "[INST] %s\n\n%s [/INST]", sys, msgs[i].content);
                else
                    sb_add(&b, "[INST] %s [/INST]", msgs[i].content);
                sys = NULL;
            }
        }
        break;
    default: /* ChatML, also the fallback */
        for (size_t i = 0; i < n; i++)
            sb_add(&b, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
        if (add_assistant)
            sb_add(&b, "<|im_start|>assistant\n");
        break;
    }
    if (!b.err && !b.p)
        sb_add(&b, "%s", "");
    if (b.err) {
        kith_free(b.p);
        return b.err;
    }
    *out = b.p;
    return 0;
}
